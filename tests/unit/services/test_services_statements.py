"""The directory believed from statements signed by pinned roots, and nothing else (issue #11).

Each test plants what an operator of the database could: a statement with no valid signature,
a partner's root speaking for another agency, an agreement one party never signed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from blo_exchange.crypto.keys import KemPrivateKey, SigningKey, public_key_record
from blo_exchange.demo.directory import DEMO_AGREEMENTS, DEMO_NODES
from blo_exchange.domain.statements import (
    agreement_statement,
    key_statement,
    node_statement,
    revocation_statement,
)
from blo_exchange.errors import NotFound
from tests.unit.services.signed_world import Signed
from tests.unit.services.world import NOW, SUITE

KG, TJ, UZ = "kg-border-service", "tj-drug-control-agency", "uz-customs-committee"


async def test_the_signed_demo_directory_is_what_the_roots_said() -> None:
    signed = Signed.demo()
    directory = signed.directory()
    assert directory.facts.refused == ()
    assert {n.id for n in DEMO_NODES} == set(directory.facts.facts.nodes)
    assert (await directory.node("blo-oybek-uz")).agency_id == UZ
    assert {a.id for a in await directory.agreements()} == {a.id for a in DEMO_AGREEMENTS}
    key = await directory.current_kem_key(TJ, SUITE)
    assert key is not None
    assert key.key_id == signed.kem[TJ].key_id
    keys = await directory.verify_keys("node", "blo-oybek-uz", NOW)
    assert list(keys) == [signed.node_keys["blo-oybek-uz"].key_id]


async def test_an_encryption_key_signed_by_no_pinned_root_is_never_sealed_to() -> None:
    signed = Signed.demo()
    planted = KemPrivateKey.generate(SUITE)
    # Newer than TJ's genuine key, signed by a root the operator made up.
    signed.add(TJ, signed.agency_key(TJ, planted, later=5), root=SigningKey.generate())
    directory = signed.directory()
    key = await directory.current_kem_key(TJ, SUITE)
    assert key is not None
    assert key.key_id == signed.kem[TJ].key_id
    assert [r for _, r in directory.facts.refused] == ["unsigned"]


async def test_a_partner_root_cannot_register_keys_or_nodes_for_another_agency() -> None:
    signed = Signed.demo()
    planted = KemPrivateKey.generate(SUITE)
    # UZ's genuine root signs a newer "TJ" encryption key, a key for a TJ node, and a node of
    # TJ's: each concerns TJ, and only TJ's root speaks for TJ.
    body = signed.agency_key(TJ, planted, later=5) | {"agency": UZ}
    signed.add(UZ, body)
    signed.add(
        UZ,
        key_statement(
            agency=UZ,
            owner_kind="node",
            owner_id="blo-fotehobod-tj",
            key=public_key_record(SigningKey.generate()),
            issued_at=NOW,
        ),
    )
    tj_node = DEMO_NODES[2].model_copy(update={"border_pairs": ("KG-TJ", "TJ-UZ")})
    signed.add(UZ, node_statement(tj_node, issued_at=NOW) | {"agency": UZ})
    directory = signed.directory()
    key = await directory.current_kem_key(TJ, SUITE)
    assert key is not None
    assert key.key_id == signed.kem[TJ].key_id
    assert len(await directory.verify_keys("node", "blo-fotehobod-tj", NOW)) == 1
    assert (await directory.node("blo-fotehobod-tj")).border_pairs == ("TJ-UZ",)
    assert sorted(r for _, r in directory.facts.refused) == [
        "key_of_another_owner",
        "key_of_another_owner",
        "node_of_another_agency",
    ]


async def test_an_agreement_is_in_force_only_when_every_party_signed_it() -> None:
    signed = Signed.demo()
    kg_tj = DEMO_AGREEMENTS[0]
    # A new version adding UZ as a party, signed by KG and TJ but not by UZ...
    widened = kg_tj.model_copy(update={"parties": (KG, TJ, UZ)})
    body = agreement_statement(widened, issued_at=NOW + timedelta(days=1))
    signed.raws.append(signed.agreement(body, parties=(KG, TJ)))
    # ...and one signed by UZ alone, claiming KG and TJ as parties.
    signed.raws.append(signed.agreement(body, parties=(UZ,)))
    directory = signed.directory()
    [current] = [a for a in await directory.agreements() if a.id == kg_tj.id]
    assert current.parties == (KG, TJ)
    assert [r for _, r in directory.facts.refused] == ["unsigned", "unsigned"]
    # Signed by all three, it is the agreement in force from then on.
    signed.raws.append(signed.agreement(body))
    [current] = [a for a in await signed.directory().agreements() if a.id == kg_tj.id]
    assert current.parties == (KG, TJ, UZ)


async def test_revocations_count_only_from_the_keys_agency() -> None:
    signed = Signed.demo()
    uz_key = signed.node_keys["blo-oybek-uz"].key_id
    at = NOW + timedelta(hours=1)
    body = revocation_statement(agency=TJ, key_id=uz_key, revoked_at=NOW, issued_at=at)
    signed.add(TJ, body)  # TJ revoking UZ's node key: refused
    assert len(await signed.directory().verify_keys("node", "blo-oybek-uz", at)) == 1
    signed.add(UZ, body | {"agency": UZ})
    directory = signed.directory()
    assert await directory.verify_keys("node", "blo-oybek-uz", at) == {}
    assert len(await directory.verify_keys("node", "blo-oybek-uz", NOW - timedelta(1))) == 1


async def test_a_node_id_claimed_by_two_agencies_is_refused_whole() -> None:
    signed = Signed.demo()
    squat = DEMO_NODES[3].model_copy(update={"agency_id": TJ, "crossing_points": ()})
    signed.add(TJ, node_statement(squat, issued_at=NOW + timedelta(days=1)))
    directory = signed.directory()
    with pytest.raises(NotFound):
        await directory.node("blo-oybek-uz")
    assert ("blo-oybek-uz", "disputed_node") in directory.facts.refused


async def test_garbage_in_the_statement_table_is_refused_not_fatal() -> None:
    signed = Signed.demo()
    signed.raws += [b"not json", b'{"signatures":[],"statement":{},"v":1}']
    signed.add(KG, {"type": "principal", "agency": KG, "issued_at": "2026-01-01T00:00:00Z"})
    directory = signed.directory()
    assert len(directory.facts.facts.nodes) == len(DEMO_NODES)
    assert sorted(r for _, r in directory.facts.refused) == ["malformed", "malformed", "malformed"]
