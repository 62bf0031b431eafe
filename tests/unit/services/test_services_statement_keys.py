"""The hub ledger's key and the witnesses' keys, believed only from statements (issue #11).

The ledger belongs to no single agency: its key is in force only when every pinned agency's root
signed it. A witness key is its agency's word about one of its own nodes.
"""

from __future__ import annotations

from datetime import timedelta

from blo_exchange.crypto.keys import SigningKey, public_key_record
from blo_exchange.crypto.statements import cosign_statement, sign_statement
from blo_exchange.domain.statements import (
    key_statement,
    ledger_key_statement,
    revocation_statement,
)
from blo_exchange.services.package_parts import statements_for
from blo_exchange.services.statements import TrustedDirectory, verify_statements
from tests.unit.services.signed_world import NoPrincipals, Signed
from tests.unit.services.world import NOW

KG, TJ, UZ = "kg-border-service", "tj-drug-control-agency", "uz-customs-committee"
ORIGIN = "blo-exchange.example/ledger"


def ledger_key(
    signed: Signed, key: SigningKey, *, agencies: tuple[str, ...], signers: tuple[str, ...]
) -> bytes:
    body = ledger_key_statement(
        origin=ORIGIN, agencies=agencies, key=public_key_record(key), issued_at=NOW
    )
    raw = sign_statement(body, agency=signers[0], root=signed.roots[signers[0]])
    for agency in signers[1:]:
        raw = cosign_statement(raw, agency=agency, root=signed.roots[agency])
    return raw


async def test_a_ledger_key_signed_by_only_some_agencies_is_not_in_force() -> None:
    signed = Signed.demo()
    key = SigningKey.generate()
    signed.raws.append(ledger_key(signed, key, agencies=(KG, TJ, UZ), signers=(KG, TJ)))
    directory = signed.directory()
    assert await directory.verify_keys("ledger", ORIGIN, NOW) == {}
    assert [r for _, r in directory.facts.refused] == ["unsigned"]
    # Once the last agency signs, it is the ledger's key.
    signed.raws.append(ledger_key(signed, key, agencies=(KG, TJ, UZ), signers=(KG, TJ, UZ)))
    assert list(await signed.directory().verify_keys("ledger", ORIGIN, NOW)) == [key.key_id]


async def test_agencies_cannot_grant_the_ledger_key_behind_another_ones_back() -> None:
    """KG and TJ list only themselves and both sign: UZ, whose root is pinned, never did."""
    signed = Signed.demo()
    signed.raws.append(
        ledger_key(signed, SigningKey.generate(), agencies=(KG, TJ), signers=(KG, TJ))
    )
    directory = signed.directory()
    assert await directory.verify_keys("ledger", ORIGIN, NOW) == {}
    assert [r for _, r in directory.facts.refused] == ["ledger_key_not_signed_by_every_agency"]


async def test_a_ledger_key_signed_by_roots_the_operator_made_up_is_not_in_force() -> None:
    signed = Signed.demo()
    fake = Signed.demo()  # the same agencies' names, other roots
    signed.raws.append(
        ledger_key(fake, SigningKey.generate(), agencies=(KG, TJ, UZ), signers=(KG, TJ, UZ))
    )
    directory = signed.directory()
    assert await directory.verify_keys("ledger", ORIGIN, NOW) == {}
    assert [r for _, r in directory.facts.refused] == ["unsigned"]


async def test_a_process_pinning_fewer_agencies_checks_the_ones_it_pins() -> None:
    signed = Signed.demo()
    key = SigningKey.generate()
    signed.raws.append(ledger_key(signed, key, agencies=(KG, TJ, UZ), signers=(KG, TJ, UZ)))
    pinned = {a: k for a, k in signed.pinned().items() if a != UZ}
    directory = TrustedDirectory(verify_statements(signed.raws, pinned), principals=NoPrincipals())
    assert list(await directory.verify_keys("ledger", ORIGIN, NOW)) == [key.key_id]


async def test_any_one_agency_can_revoke_the_ledger_key_and_no_outsider_can() -> None:
    signed = Signed.demo()
    key = SigningKey.generate()
    signed.raws.append(ledger_key(signed, key, agencies=(KG, TJ, UZ), signers=(KG, TJ, UZ)))
    later = NOW + timedelta(hours=1)
    body = revocation_statement(agency=UZ, key_id=key.key_id, revoked_at=NOW, issued_at=later)
    signed.add(UZ, body, root=SigningKey.generate())  # not UZ's root: refused
    assert len(await signed.directory().verify_keys("ledger", ORIGIN, later)) == 1
    signed.add(UZ, body)
    assert await signed.directory().verify_keys("ledger", ORIGIN, later) == {}


async def test_a_witness_key_is_its_agencys_word_about_one_of_its_nodes() -> None:
    signed = Signed.demo()
    genuine, planted = SigningKey.generate(), SigningKey.generate()
    signed.add(
        TJ,
        key_statement(
            agency=TJ,
            owner_kind="witness",
            owner_id="blo-karamyk-tj",
            key=public_key_record(genuine),
            issued_at=NOW,
        ),
    )
    # KG's genuine root granting a witness key to a TJ node, and a "TJ" one under a made-up root.
    for agency, root in ((KG, None), (TJ, SigningKey.generate())):
        signed.add(
            agency,
            key_statement(
                agency=agency,
                owner_kind="witness",
                owner_id="blo-fotehobod-tj",
                key=public_key_record(planted),
                issued_at=NOW,
            ),
            root=root,
        )
    directory = signed.directory()
    assert await directory.witness_keys() == [("blo-karamyk-tj", genuine.verify_key().public)]
    assert sorted(r for _, r in directory.facts.refused) == ["key_of_another_owner", "unsigned"]


async def test_a_package_carries_the_ledger_key_and_its_revocation_for_its_checkpoint() -> None:
    """An importer cut off during a rotation learns the ledger key from the package; it counts
    there only as it would anywhere (``verify_statements``)."""
    signed = Signed.demo()
    key = SigningKey.generate()
    signed.raws.append(ledger_key(signed, key, agencies=(KG, TJ, UZ), signers=(KG, TJ, UZ)))
    later = NOW + timedelta(hours=1)
    signed.add(
        UZ, revocation_statement(agency=UZ, key_id=key.key_id, revoked_at=later, issued_at=later)
    )
    verified = signed.directory().facts.statements
    carried = statements_for(verified, nodes=set(), agreement_ids=set())
    assert [s.body["type"] for s in carried] == ["ledger_key", "revocation"]
