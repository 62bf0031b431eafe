"""Offline packages (docs/contracts/packages.md): exported at KG, carried, imported at TJ.

Every negative test is something the courier (or a lying exporter database) could do; each must
be refused whole, naming the member, with nothing delivered and no receipt queued.
"""

from __future__ import annotations

import io
import json
import tarfile
from datetime import UTC, datetime, timedelta

import pytest

from blo_exchange.crypto.canonical import canonical_json, parse_canonical_json, sha256_hex
from blo_exchange.crypto.keys import SigningKey, public_key_record
from blo_exchange.crypto.note import NoteVerifier
from blo_exchange.crypto.package import (
    CHECKPOINT_MEMBER,
    MANIFEST_MEMBER,
    sign_manifest,
    write_archive,
)
from blo_exchange.crypto.package_seal import seal_package
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.crypto.statements import sign_statement
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.statements import key_statement, revocation_statement
from blo_exchange.errors import InvalidPackage
from tests.unit.services.package_world import (
    KG_NODE,
    ORIGIN,
    TJ_NODE,
    UZ_NODE,
    Carry,
    Importer,
    replace_member,
)
from tests.unit.services.world import NOW

TJ = "tj-drug-control-agency"


def env(alert_id: str) -> str:
    return f"envelopes/{alert_id}.json"


async def carried(*, ledgered: bool = True) -> tuple[Carry, bytes]:
    carry = Carry()
    await carry.post(EXAMPLE_SEIZURE, "k1", ledgered=ledgered)
    await carry.post(EXAMPLE_RISK, "k2", ledgered=ledgered)
    return carry, await carry.export()


async def refused(importer: Importer, data: bytes, member: str, reason: str) -> None:
    with pytest.raises(InvalidPackage) as caught:
        await importer.service().import_package(data)
    assert (caught.value.member, caught.value.reason) == (member, reason)
    assert importer.inbox.items == {}
    assert importer.queue.rows == []


def resigned(
    carry: Carry, members: dict[str, bytes], change: dict[str, object], signer: SigningKey
) -> bytes:
    """The manifest's body changed, signed again with ``signer``, sealed to TJ again."""
    body = parse_canonical_json(members[MANIFEST_MEMBER])["manifest"] | change
    manifest = sign_manifest(body, node=KG_NODE, signer=signer)
    return carry.seal({**members, MANIFEST_MEMBER: manifest})


async def test_a_carried_package_delivers_every_alert_once_with_queued_receipts() -> None:
    carry, data = await carried()
    importer = Importer(carry)
    report = await importer.service().import_package(data)
    assert sorted(report.delivered) == sorted(carry.alerts)
    assert (report.duplicates, report.rejected, report.unproven) == ((), (), ())
    assert report.proven == 2
    assert {alert for _, alert in importer.inbox.items} == set(carry.alerts)
    # One alert_delivered receipt per alert, signed by TJ's node, queued for the link.
    bodies = [json.loads(r.payload)["receipt"] for r in importer.queue.rows]
    assert sorted(b["alert_id"] for b in bodies) == sorted(carry.alerts)
    assert {b["type"] for b in bodies} == {"alert_delivered"}
    signing = carry.signed.node_keys[TJ_NODE]
    for row in importer.queue.rows:
        UnverifiedReceipt.parse(row.payload).verify({signing.key_id: signing.verify_key()})


async def test_importing_again_is_a_no_op_reported_as_duplicates() -> None:
    carry, data = await carried()
    importer = Importer(carry)
    await importer.service().import_package(data)
    queued = list(importer.queue.rows)
    again = await importer.service().import_package(data)
    assert again.delivered == ()
    assert sorted(again.duplicates) == sorted(carry.alerts)
    assert len(importer.inbox.items) == 2
    assert importer.queue.rows == queued  # same receipt ids: nothing new queued


async def test_export_is_deterministic_for_the_same_contents() -> None:
    carry = Carry()
    await carry.post(EXAMPLE_SEIZURE, "k1")
    carry.ledger.sign()
    exporter = carry.exporter()
    one = await exporter.export(for_agency=TJ, since=NOW, package_id="p-1")
    two = await exporter.export(for_agency=TJ, since=NOW, package_id="p-1")
    # The archive is; its sealing is not (HPKE's ephemeral key is fresh each time).
    assert carry.members(one.data) == carry.members(two.data)
    assert write_archive(carry.members(one.data)) == write_archive(carry.members(two.data))
    assert one.data != two.data


async def test_the_courier_reads_nothing_but_the_destination() -> None:
    carry, data = await carried()
    line, sealed = data.split(b"\n", 1)
    assert b"tj-drug-control-agency" in line  # where to take it, and which key opens it
    secrets = [b"Example Driver", b"400000001", b"welded compartment", b"Jirgatol"]
    metadata = [b"KG-TJ", b"seizure", b"kg-border-service", b"blo-karamyk-kg", b"AMBER"]
    for text in [*secrets, *metadata, *(a.encode() for a in carry.alerts)]:
        assert text not in data
    assert len(sealed) > sum(len(m) for m in carry.members(data).values())


async def test_statements_carried_let_the_importer_verify_a_key_it_had_not_seen() -> None:
    carry = Carry()
    # KG rotates its node key; TJ's copy of the directory has not heard of it (the link is cut).
    rotated = SigningKey.generate()
    signed = carry.signed
    tj_copy = list(signed.raws)
    signed.add(
        "kg-border-service",
        key_statement(
            agency="kg-border-service",
            owner_kind="node",
            owner_id=KG_NODE,
            key=public_key_record(rotated),
            issued_at=NOW,
        ),
    )
    carry.kg.raws = list(signed.raws)
    signed.node_keys[KG_NODE] = rotated
    await carry.post(EXAMPLE_SEIZURE, "k1")
    data = await carry.export()
    importer = Importer(carry, own=tj_copy)
    report = await importer.service().import_package(data)
    assert report.delivered == tuple(carry.alerts)
    assert report.statements_added >= 1  # kept: the feed verifies the alert again later
    assert len(importer.statements.raws) > len(tj_copy)


async def test_an_unproven_alert_is_accepted_and_reported_unless_proofs_are_required() -> None:
    carry, data = await carried(ledgered=False)
    assert CHECKPOINT_MEMBER not in carry.members(data)
    checked = await Importer(carry).service().verify(data)
    assert sorted(checked.report.unproven) == sorted(carry.alerts)
    with pytest.raises(InvalidPackage) as caught:
        await Importer(carry).service().import_package(data, require_proofs=True)
    assert caught.value.reason == "no_ledger_proof"


async def test_a_ledger_that_cannot_be_read_leaves_the_proofs_out_and_says_why() -> None:
    carry = Carry()
    await carry.post(EXAMPLE_SEIZURE, "k1")

    class Down:
        async def latest_checkpoint(self) -> None:
            raise OSError("connection refused")

    carry.ledger = Down()  # type: ignore[assignment]
    result = await carry.exporter().export(for_agency=TJ, since=NOW)
    assert result.proofs == 0
    assert result.unproven == tuple(carry.alerts)
    manifest = parse_canonical_json(carry.members(result.data)[MANIFEST_MEMBER])["manifest"]
    assert manifest["ledger"]["problem"] == "ledger unreachable: OSError"


# --- tampering: each refused whole, naming the member ------------------------------------------


async def test_refused_a_flipped_bit_in_an_envelope() -> None:
    carry, data = await carried()
    name = env(carry.alerts[0])
    raw = bytearray(carry.members(data)[name])
    raw[len(raw) // 2] ^= 0x01
    tampered = replace_member(carry, data, name, bytes(raw))
    await refused(Importer(carry), tampered, name, "sha256_mismatch")


async def test_refused_a_manifest_entry_changed() -> None:
    carry, data = await carried()
    members = carry.members(data)
    document = parse_canonical_json(members[MANIFEST_MEMBER])
    document["manifest"]["members"][0]["sha256"] = "0" * 64
    tampered = replace_member(carry, data, MANIFEST_MEMBER, canonical_json(document))
    await refused(Importer(carry), tampered, MANIFEST_MEMBER, "bad_signature")


async def test_refused_a_manifest_signed_by_a_key_not_the_exporters() -> None:
    carry, data = await carried()
    forged = resigned(carry, carry.members(data), {"for_agency": TJ}, SigningKey.generate())
    await refused(Importer(carry), forged, MANIFEST_MEMBER, "unknown_exporter_key")


async def test_refused_a_dropped_envelope() -> None:
    carry, data = await carried()
    name = env(carry.alerts[1])
    await refused(Importer(carry), replace_member(carry, data, name, None), name, "missing")


async def test_refused_an_added_member() -> None:
    carry, data = await carried()
    name = "envelopes/00000000-0000-4000-8000-000000000000.json"
    extra = carry.members(data)[env(carry.alerts[0])]
    added = replace_member(carry, data, name, extra)
    await refused(Importer(carry), added, name, "not_in_manifest")


async def test_refused_a_statement_signed_by_an_unpinned_root() -> None:
    carry, data = await carried()
    planted = sign_statement(
        revocation_statement(agency=TJ, key_id="0" * 32, revoked_at=NOW, issued_at=NOW),
        agency=TJ,
        root=SigningKey.generate(),
    )
    name = "statements/planted.json"
    planted_in = replace_member(carry, data, name, planted)
    await refused(Importer(carry), planted_in, name, "statement unsigned")


def lying_exporter(carry: Carry, data: bytes, name: str, content: bytes) -> bytes:
    """``name`` replaced by the exporting node itself (its database lies), the manifest signed
    again by its genuine key: the member hashes match, so only the member's own check is left."""
    members = carry.members(data)
    members[name] = content
    body = parse_canonical_json(members[MANIFEST_MEMBER])["manifest"]
    body["members"] = [
        entry | {"sha256": sha256_hex(content), "size": len(content)}
        if entry["name"] == name
        else entry
        for entry in body["members"]
    ]
    return resigned(carry, members, body, carry.signed.node_keys[KG_NODE])


async def test_refused_a_proof_that_does_not_lead_to_the_checkpoint() -> None:
    carry, data = await carried()
    name = f"proofs/{carry.alerts[0]}.json"
    proof = parse_canonical_json(carry.members(data)[name])
    proof["inclusion_path"] = list(reversed(proof["inclusion_path"])) + proof["inclusion_path"][:1]
    lying = lying_exporter(carry, data, name, canonical_json(proof))
    await refused(Importer(carry), lying, name, "inclusion_proof_fails")


async def test_refused_a_proof_of_another_alerts_entry() -> None:
    carry, data = await carried()
    first, second = carry.alerts
    name = f"proofs/{first}.json"
    # The second alert's genuine proof, relabelled: it leads to the root, but from an entry that
    # records other bytes under another alert id.
    proof = parse_canonical_json(carry.members(data)[f"proofs/{second}.json"]) | {"alert_id": first}
    lying = lying_exporter(carry, data, name, canonical_json(proof))
    await refused(Importer(carry), lying, name, "entry_is_not_this_envelope")


async def test_refused_an_envelope_swapped_for_another_genuine_one() -> None:
    carry, data = await carried()
    first, second = carry.alerts
    other = carry.members(data)[env(second)]
    lying = lying_exporter(carry, data, env(first), other)
    await refused(Importer(carry), lying, env(first), "alert_id_does_not_match_name")


async def test_refused_a_checkpoint_signed_by_a_ledger_key_this_node_does_not_trust() -> None:
    carry, data = await carried()
    stranger = NoteVerifier(ORIGIN, SigningKey.generate().verify_key().public)
    importer = Importer(carry, ledger_keys=[stranger])
    await refused(importer, data, CHECKPOINT_MEMBER, "bad_checkpoint_signature")


def content_end(archive: bytes) -> int:
    """Where the last member's data blocks end (the rest is tar's end marker and padding)."""
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:") as opened:
        last = opened.getmembers()[-1]
    return last.offset_data + -(-last.size // 512) * 512


async def test_refused_a_sealed_file_cut_short_or_with_a_flipped_bit() -> None:
    carry, data = await carried()
    flipped = bytearray(data)
    flipped[-100] ^= 0x01
    for tampered in (data[: len(data) // 2], data[:-1], bytes(flipped)):
        await refused(Importer(carry), tampered, "sealed", "cannot_open")


async def test_refused_a_sealed_file_whose_clear_line_was_changed() -> None:
    carry, data = await carried()
    line, rest = data.split(b"\n", 1)
    renamed = line.replace(b"tj-drug-control-agency", b"tj-drug-control-agencx")
    await refused(Importer(carry), renamed + b"\n" + rest, "sealed", "for_another_agency")
    spaced = line[:-1] + b', "x": 1}'
    await refused(Importer(carry), spaced + b"\n" + rest, "sealed", "not_a_sealed_package")


@pytest.mark.parametrize("keep", [0.3, 0.6, 1.0])
async def test_refused_an_archive_cut_at_a_block_boundary(keep: float) -> None:
    carry, data = await carried()
    # Sealed again after the cut (anyone can seal to TJ's public key): the archive's own check.
    # At a block boundary tarfile itself stops quietly; keep=1.0 cuts only the end marker.
    archive = write_archive(carry.members(data))
    cut = archive[: int(content_end(archive) * keep) // 512 * 512]
    key = carry.signed.kem[TJ].public_key()
    with pytest.raises(InvalidPackage) as caught:
        await Importer(carry).service().import_package(seal_package(cut, for_agency=TJ, key=key))
    assert (caught.value.member, caught.value.reason[:9]) == ("archive", "truncated")


async def test_refused_an_archive_cut_mid_block() -> None:
    carry, data = await carried()
    archive = write_archive(carry.members(data))
    cut = archive[: content_end(archive) // 2 + 7]
    key = carry.signed.kem[TJ].public_key()
    with pytest.raises(InvalidPackage) as caught:
        await Importer(carry).service().import_package(seal_package(cut, for_agency=TJ, key=key))
    assert (caught.value.member, caught.value.reason[:9]) == ("archive", "truncated")


async def test_refused_at_a_node_of_another_agency() -> None:
    carry, data = await carried()
    await refused(Importer(carry, node_id=UZ_NODE), data, "sealed", "for_another_agency")


async def test_refused_a_manifest_for_another_agency_sealed_to_this_one() -> None:
    carry, data = await carried()
    members = carry.members(data)
    other: dict[str, object] = {"for_agency": "uz-customs-committee"}
    moved = resigned(carry, members, other, carry.signed.node_keys[KG_NODE])
    await refused(Importer(carry), moved, MANIFEST_MEMBER, "for_another_agency")


async def test_refused_an_envelope_whose_origin_key_the_importer_knows_is_revoked() -> None:
    carry, data = await carried()
    # TJ's copy knows KG revoked that key (the exporter's copy did not): the courier cannot
    # un-revoke it, because the importer folds its own statements in.
    key_id = carry.signed.node_keys[KG_NODE].key_id
    own = [
        *carry.signed.raws,
        sign_statement(
            revocation_statement(
                agency="kg-border-service",
                key_id=key_id,
                revoked_at=NOW - timedelta(minutes=1),
                issued_at=NOW,
            ),
            agency="kg-border-service",
            root=carry.signed.roots["kg-border-service"],
        ),
    ]
    await refused(Importer(carry, own=own), data, MANIFEST_MEMBER, "unknown_exporter_key")


async def test_export_leaves_out_alerts_not_addressed_to_the_destination() -> None:
    carry = Carry()
    await carry.post(EXAMPLE_SEIZURE, "k1")
    carry.ledger.sign()
    result = await carry.exporter().export(for_agency="uz-customs-committee", since=NOW)
    assert result.alerts == ()
    assert result.statements >= 1  # the exporter's own node and key, to check the manifest


async def test_a_lookout_that_expired_while_carried_is_rejected_and_the_rest_delivered() -> None:
    carry, data = await carried()
    # Arrives after the risk alert's valid_until (2026-12-31), the agreement still in force.
    importer = Importer(carry, now=datetime(2027, 1, 5, tzinfo=UTC))
    report = await importer.service().import_package(data)
    seizure, risk = carry.alerts
    assert report.delivered == (seizure,)
    assert report.rejected == ((risk, "expired"),)
    kinds = sorted(json.loads(r.payload)["receipt"]["type"] for r in importer.queue.rows)
    assert kinds == ["alert_delivered", "alert_rejected"]


async def test_a_hub_relays_alerts_it_received_to_its_agencys_cut_off_site() -> None:
    carry, data = await carried()
    hub = Importer(carry)  # TJ's Karamyk node got KG's alerts
    await hub.service().import_package(data)
    exporter = carry.exporter(TJ_NODE, inbox=hub.inbox, statements=hub.statements)
    mine_only = await exporter.export(for_agency=TJ, since=NOW)
    assert mine_only.alerts == ()  # not its own: only with --relay
    relayed = await exporter.export(for_agency=TJ, since=NOW, relay=True)
    assert sorted(relayed.alerts) == sorted(carry.alerts)
    site = Importer(carry, node_id="blo-fotehobod-tj")
    report = await site.service().import_package(relayed.data)
    assert sorted(report.delivered) == sorted(carry.alerts)
    assert report.exporter_node == TJ_NODE
    # Still the origin's envelopes: KG's signatures, opened by TJ's agency key at the site.
    assert {item.origin_node for item in site.inbox.items.values()} == {KG_NODE}


async def test_what_the_destination_has_not_acknowledged_is_listed_until_it_does() -> None:
    # A package lost on the way is found here: its alerts never get TJ's delivery receipt.
    carry, _lost = await carried()
    exporter = carry.exporter()
    assert await exporter.unconfirmed(for_agency=TJ, since=NOW) == tuple(carry.alerts)
    seizure, risk = carry.alerts
    carry.ledger.delivered(seizure, carry.node("blo-oybek-uz"))  # another agency's: not TJ's
    carry.ledger.delivered(risk, carry.node(TJ_NODE))
    assert await exporter.unconfirmed(for_agency=TJ, since=NOW) == (seizure,)
