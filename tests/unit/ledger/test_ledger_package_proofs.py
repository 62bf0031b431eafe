"""Ledger proofs for offline packages (ledger.package_proofs): collected only for the bytes the
ledger recorded under a signed checkpoint, and checked against the key this node trusts."""

from __future__ import annotations

import pytest
from tests.unit.services.package_world import ORIGIN, Carry

from blo_exchange.crypto.canonical import canonical_json, sha256_hex
from blo_exchange.crypto.note import NoteVerifier
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.errors import InvalidPackage
from blo_exchange.ledger.package_proofs import LedgerProofSource, PackageProofChecker


async def test_no_proof_for_other_bytes_or_an_entry_the_checkpoint_does_not_cover() -> None:
    carry = Carry()
    signed_raw = await carry.post(EXAMPLE_SEIZURE, "k1")
    carry.ledger.sign()
    later_raw = await carry.post(EXAMPLE_SEIZURE, "k2")  # recorded after the checkpoint
    first, later = carry.alerts
    source = LedgerProofSource(carry.ledger, origin=ORIGIN)  # type: ignore[arg-type]
    found = await source.collect(
        [(first, sha256_hex(signed_raw)), (later, sha256_hex(later_raw)), (first, "0" * 64)]
    )
    assert list(found.proofs) == [first]
    other = await source.collect([(first, sha256_hex(later_raw))])
    assert other.proofs == {}


async def test_no_checkpoint_yet_is_said() -> None:
    carry = Carry()
    await carry.post(EXAMPLE_SEIZURE, "k1")
    found = await LedgerProofSource(carry.ledger, origin=ORIGIN).collect([("a", "b")])  # type: ignore[arg-type]
    assert (found.checkpoint, found.problem) == (None, "the ledger has no checkpoint yet")


async def checker_and_proof() -> tuple[Carry, bytes, dict[str, tuple[str, bytes]]]:
    carry = Carry()
    raw = await carry.post(EXAMPLE_SEIZURE, "k1")
    carry.ledger.sign()
    source = LedgerProofSource(carry.ledger, origin=ORIGIN)  # type: ignore[arg-type]
    found = await source.collect([(carry.alerts[0], sha256_hex(raw))])
    assert found.checkpoint is not None
    proofs = {a: (sha256_hex(raw), p) for a, p in found.proofs.items()}
    return carry, found.checkpoint.encode(), proofs


def checker(carry: Carry) -> PackageProofChecker:
    async def keys() -> list[NoteVerifier]:
        return [carry.ledger.verifier()]

    return PackageProofChecker(origin=ORIGIN, ledger_keys=keys)


async def test_a_genuine_proof_checks() -> None:
    carry, checkpoint, proofs = await checker_and_proof()
    assert await checker(carry).check(ORIGIN, checkpoint, proofs) == 1


async def test_refused_a_checkpoint_of_another_log() -> None:
    carry, checkpoint, proofs = await checker_and_proof()
    with pytest.raises(InvalidPackage) as caught:
        await checker(carry).check("elsewhere.example/ledger", checkpoint, proofs)
    assert (caught.value.member, caught.value.reason) == ("checkpoint.txt", "another_ledger")


async def test_refused_a_malformed_proof() -> None:
    carry, checkpoint, proofs = await checker_and_proof()
    alert_id, (digest, _) = next(iter(proofs.items()))
    broken = {alert_id: (digest, canonical_json({"alert_id": alert_id}))}
    with pytest.raises(InvalidPackage) as caught:
        await checker(carry).check(ORIGIN, checkpoint, broken)
    assert (caught.value.member, caught.value.reason) == (
        f"proofs/{alert_id}.json",
        "malformed_proof",
    )
