"""``ledger verify --roots``: the ledger, witness and node keys come from the bundle's statements,
verified again against the auditor's roots, never from the bundle's own key lists."""

from __future__ import annotations

from typing import Any

from tests.unit.services.signed_world import Signed
from tests.unit.services.test_services_statement_keys import KG, TJ, UZ, ledger_key
from tests.unit.services.world import NOW

from blo_exchange.crypto.keys import SigningKey, public_key_record
from blo_exchange.crypto.note import Cosigner, NoteSigner, format_checkpoint
from blo_exchange.domain.statements import key_statement
from blo_exchange.ledger.checkpoints import note_signer
from blo_exchange.ledger.merkle import MemoryTree, leaf_hash
from blo_exchange.ledger.verify import VerifyReport, build_bundle, verify_bundle
from blo_exchange.ledger.verify_roots import GrantedKeys, granted_keys

ORIGIN = "blo-exchange.example/ledger"
LEDGER = SigningKey.generate()
WITNESS_KEY = SigningKey.generate()
WITNESS = Cosigner.from_signing_key("blo-karamyk-tj/witness", WITNESS_KEY)


def world(*, ledger_signers: tuple[str, ...] = (KG, TJ, UZ)) -> Signed:
    signed = Signed.demo()
    signed.raws.append(ledger_key(signed, LEDGER, agencies=(KG, TJ, UZ), signers=ledger_signers))
    signed.add(
        TJ,
        key_statement(
            agency=TJ,
            owner_kind="witness",
            owner_id="blo-karamyk-tj",
            key=public_key_record(WITNESS_KEY),
            issued_at=NOW,
        ),
    )
    return signed


def bundle(signed: Signed, signer: NoteSigner, *, witnesses: list[str]) -> dict[str, Any]:
    tree = MemoryTree()
    inputs = [b'{"i":0}', b'{"i":1}']
    tree.extend(inputs)
    note = signer.sign(format_checkpoint(ORIGIN, 2, tree.root_at(2)))
    note += WITNESS.cosign(note.rpartition("\n\n")[0] + "\n", 1_800_000_000)
    head = {"tree_size": 2, "root_hash": tree.root_at(2).hex(), "note": note}
    return build_bundle(
        origin=ORIGIN,
        ledger_public_key=signer.verifier().verifier_key_string(),
        checkpoint=head,
        checkpoints=[head],
        leaves=[(i, x, leaf_hash(x)) for i, x in enumerate(inputs)],
        witness_keys=witnesses,
        statements=[raw.decode() for raw in signed.raws],
    )


def check(signed: Signed, b: dict[str, Any], **kwargs: Any) -> tuple[GrantedKeys, VerifyReport]:
    granted = granted_keys(b["statements"], signed.pinned(), origin=ORIGIN)
    return granted, verify_bundle(b, tree=MemoryTree(), granted=granted, **kwargs)


def test_keys_the_agencies_roots_granted_verify_the_bundle() -> None:
    signed = world()
    granted, report = check(signed, bundle(signed, note_signer(ORIGIN, LEDGER), witnesses=[]))
    assert report.ok, report.failures
    assert len(granted.ledger) == 1
    assert granted.witnesses == (WITNESS.verifier().verifier_key_string(),)
    _, report = check(
        signed, bundle(signed, note_signer(ORIGIN, LEDGER), witnesses=[]), witnesses=1
    )
    assert report.ok, report.failures


def test_a_bundle_naming_a_key_no_statement_grants_is_refused() -> None:
    signed = world()
    planted = note_signer(ORIGIN, SigningKey.generate())
    _, report = check(signed, bundle(signed, planted, witnesses=[]))
    assert not report.ok
    assert (
        "is not granted by a ledger_key statement signed by every pinned agency's root"
        in (report.failures[0])
    )
    # Without the roots, the bundle's word is taken, and said to be.
    alone = verify_bundle(bundle(signed, planted, witnesses=[]), tree=MemoryTree())
    assert alone.ok
    assert any("trust on first use" in n for n in alone.notes)


def test_a_ledger_key_not_yet_signed_by_every_agency_grants_nothing() -> None:
    signed = world(ledger_signers=(KG, TJ))
    granted, report = check(signed, bundle(signed, note_signer(ORIGIN, LEDGER), witnesses=[]))
    assert granted.ledger == ()
    assert not report.ok


def test_witness_keys_listed_by_the_bundle_alone_are_not_counted() -> None:
    signed = world()
    stranger = Cosigner.from_signing_key("blo-phantom/witness", SigningKey.generate())
    b = bundle(
        signed, note_signer(ORIGIN, LEDGER), witnesses=[stranger.verifier().verifier_key_string()]
    )
    b["checkpoint"]["note"] += stranger.cosign(
        b["checkpoint"]["note"].split("\n\n")[0] + "\n", 1_800_000_000
    )
    _, report = check(signed, b, witnesses=2)
    assert report.failures == [
        "checkpoint 2 has 1 valid cosignature(s) by the pinned witnesses, 2 required"
    ]
