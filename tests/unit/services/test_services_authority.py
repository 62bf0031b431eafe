"""Issue #11: a genuine partner node's signature does not make its claims true.

Each test is one attack tried against the demo: a message signed with the UZ node's own key that
claims more than the UZ node may. Every receiver (delivery, the feed, the ledger writer) refuses
it, records a rejection, and shows or ledgers nothing in anyone's name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from typing import Any

import pytest

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import (
    RecipientKey,
    UnverifiedEnvelope,
    envelope_sha256,
    seal,
    seal_alert,
)
from blo_exchange.crypto.files import FilePart
from blo_exchange.crypto.receipt import sign_receipt
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.domain.ids import format_time, new_alert_id
from blo_exchange.domain.subjects import alert_subject, receipt_subject
from blo_exchange.errors import NotFound
from blo_exchange.ledger.writer import InboundMessage, LedgerWriter
from blo_exchange.services.feed import FeedService
from blo_exchange.services.ports import InboxItem
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType, deterministic_receipt_id
from tests.unit.services.fakes import FakeInbox, FakeLedgerStore, FakePublisher
from tests.unit.services.world import NOW, SUITE, World, clock

KG_NODE, TJ_KARAMYK, TJ_FOTEHOBOD, UZ_NODE = (
    "blo-karamyk-kg",
    "blo-karamyk-tj",
    "blo-fotehobod-tj",
    "blo-oybek-uz",
)
KG, TJ, UZ = "kg-border-service", "tj-drug-control-agency", "uz-customs-committee"
CASE = canonical_json({"narrative": {"text": "forged", "lang": "en"}})
NOMINAL = canonical_json({"persons": [{"name": "A. Person"}]})


def forge(
    world: World,
    *,
    signer: str = UZ_NODE,
    recipients: Mapping[str, tuple[str, ...]] | None = None,
    **header: Any,
) -> tuple[str, bytes]:
    """An envelope signed with ``signer``'s genuine key, its header overridden by ``header``."""
    fields = header_of(world, signer, **header)
    sealed_to = recipients or {UZ: ("case",), TJ: ("case",)}
    parts = {"case": CASE} | (
        {"nominal": NOMINAL} if any("nominal" in p for p in sealed_to.values()) else {}
    )
    raw = seal(
        fields,
        parts,
        [
            RecipientKey(agency=agency, key=world.directory.kem_keys[agency], parts=names)
            for agency, names in sealed_to.items()
        ],
        world.signing[signer],
    )
    return alert_subject(fields["border_pair"], fields["kind"]), raw


def header_of(world: World, signer: str = UZ_NODE, **header: Any) -> dict[str, Any]:
    """A UZ alert's header as ``signer`` would seal it, overridden by ``header``."""
    node = world.node(signer)
    return {
        "alert_id": new_alert_id(NOW, os.urandom),
        "kind": "seizure",
        "border_pair": "TJ-UZ",
        "crossing_point": "UZ-OYBEK",
        "origin_node": node.id,
        "origin_agency": node.agency_id,
        "created_at": format_time(NOW),
        "tlp": "AMBER",
        "handling": {"scheme": "none", "code": None, "conditions": []},
        "grading": None,
        "agreement_ids": ["mou-tj-uz-2026"],
        "supersedes": None,
        "suite": SUITE.value,
    } | header


async def delivered_at(world: World, node_id: str, subject: str, raw: bytes) -> tuple[str, str]:
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = await world.delivery(node_id, inbox, receipts).handle(subject, raw, 5)
    if outcome.status == "rejected":
        assert inbox.items == {}
        assert [r.reason for r in inbox.rejections] == [outcome.reason]
        [(_, receipt, _)] = receipts.published
        assert json.loads(receipt)["receipt"]["type"] == "alert_rejected"
    return outcome.status, outcome.reason or ""


async def ledgered(world: World, subject: str, raw: bytes) -> dict[str, Any]:
    store = FakeLedgerStore()
    writer = LedgerWriter(directory=world.directory, store=store, clock=clock)
    await writer.handle([InboundMessage(subject, raw, 1)])
    [entry] = store.entries
    return dict(json.loads(entry.leaf_input))


async def assert_refused_everywhere(
    world: World, subject: str, raw: bytes, reason: str, receivers: tuple[str, ...]
) -> None:
    for node_id in receivers:
        assert await delivered_at(world, node_id, subject, raw) == ("rejected", reason)
    entry = await ledgered(world, subject, raw)
    assert entry["type"] == "alert_rejected"
    assert entry["detail"]["reason"] == reason
    assert entry["actor_agency"] is None


async def test_the_genuine_partner_alert_is_accepted() -> None:
    """The control: the same forge with nothing overridden is a valid UZ alert."""
    world = World.demo()
    subject, raw = forge(world)
    assert await delivered_at(world, TJ_FOTEHOBOD, subject, raw) == ("delivered", "")
    entry = await ledgered(world, subject, raw)
    assert (entry["type"], entry["actor_agency"]) == ("alert_shared", UZ)


async def test_a_partner_node_impersonating_another_agency_is_refused() -> None:
    world = World.demo()
    subject, raw = forge(world, origin_agency=TJ)
    await assert_refused_everywhere(world, subject, raw, "wrong_origin_agency", (TJ_FOTEHOBOD,))


async def test_a_pair_the_node_does_not_serve_is_refused() -> None:
    world = World.demo()
    subject, raw = forge(
        world,
        border_pair="KG-TJ",
        crossing_point="TJ-KARAMYK",
        agreement_ids=["mou-kg-tj-2026"],
        recipients={UZ: ("case",), TJ: ("case",), KG: ("case",)},
    )
    await assert_refused_everywhere(world, subject, raw, "pair_not_served", (TJ_KARAMYK, KG_NODE))


async def test_a_crossing_point_the_node_does_not_serve_is_refused() -> None:
    world = World.demo()
    subject, raw = forge(world, crossing_point="TJ-FOTEHOBOD")
    await assert_refused_everywhere(
        world, subject, raw, "crossing_point_not_served", (TJ_FOTEHOBOD,)
    )


async def test_a_recipient_no_agreement_allows_is_refused() -> None:
    world = World.demo()
    subject, raw = forge(world, recipients={UZ: ("case",), TJ: ("case",), KG: ("case",)})
    await assert_refused_everywhere(world, subject, raw, "recipient_not_allowed", (TJ_FOTEHOBOD,))


async def test_a_tlp_above_the_agreements_is_refused() -> None:
    world = World.demo()
    subject, raw = forge(world, tlp="RED")  # mou-tj-uz-2026 allows at most AMBER
    await assert_refused_everywhere(
        world, subject, raw, "agreement_not_applicable", (TJ_FOTEHOBOD,)
    )


@pytest.mark.parametrize(
    "agreement_ids",
    [[], ["mou-kg-tj-2026"], ["no-such-agreement"], ["mou-tj-uz-2026", "mou-kg-tj-2026"]],
)
async def test_citing_no_or_a_foreign_agreement_is_refused(agreement_ids: list[str]) -> None:
    world = World.demo()
    subject, raw = forge(world, agreement_ids=agreement_ids)
    await assert_refused_everywhere(
        world, subject, raw, "agreement_not_applicable", (TJ_FOTEHOBOD,)
    )


async def test_a_lapsed_agreement_is_refused() -> None:
    world = World.demo()
    world.directory.agreement_list = [
        a.model_copy(update={"valid_until": NOW}) if a.id == "mou-tj-uz-2026" else a
        for a in world.directory.agreement_list
    ]
    subject, raw = forge(world)
    await assert_refused_everywhere(
        world, subject, raw, "agreement_not_applicable", (TJ_FOTEHOBOD,)
    )


async def test_a_nominal_block_no_agreement_allows_is_refused_and_never_shown() -> None:
    world = World.demo()
    subject, raw = forge(world, recipients={UZ: ("case", "nominal"), TJ: ("case", "nominal")})
    await assert_refused_everywhere(world, subject, raw, "nominal_not_allowed", (TJ_FOTEHOBOD,))
    # Even if such an envelope were in the inbox (stored before this check existed, or put
    # there by whoever can write the database), the feed verifies again and does not show it.
    inbox = FakeInbox()
    node = world.node(TJ_FOTEHOBOD)
    inbox_item = await _stored(inbox, raw)
    key = world.agency_keys[TJ]
    feed = FeedService(
        node=node, kem_keys={key.key_id: key}, directory=world.directory, inbox=inbox
    )
    analyst = Principal(id="a", role=Role.ANALYST, agency_id=TJ, label="a", created_at=NOW)
    with pytest.raises(NotFound):
        await feed.get(analyst, inbox_item.alert_id)


async def _stored(inbox: FakeInbox, raw: bytes) -> InboxItem:
    """Put ``raw`` in ``inbox`` as the delivery path would have, bypassing its checks."""
    header = UnverifiedEnvelope.parse(raw).header
    item = InboxItem(
        node_id=TJ_FOTEHOBOD,
        alert_id=str(header["alert_id"]),
        agency_id=TJ,
        origin_agency=str(header["origin_agency"]),
        origin_node=str(header["origin_node"]),
        border_pair=str(header["border_pair"]),
        kind=str(header["kind"]),
        tlp=str(header["tlp"]),
        created_at=NOW,
        stream_seq=5,
        envelope=raw,
        envelope_sha256=envelope_sha256(raw),
    )
    await inbox.add(item)
    return item


def receipt_body(world: World, signer: str, **fields: Any) -> dict[str, Any]:
    node = world.node(signer)
    return {
        "receipt_id": deterministic_receipt_id("some-alert", TJ_FOTEHOBOD, "feedback"),
        "type": "feedback",
        "alert_id": "some-alert",
        "node": node.id,
        "agency": node.agency_id,
        "border_pair": "TJ-UZ",
        "kind": "seizure",
        "agreement_ids": ["mou-tj-uz-2026"],
        "envelope_sha256": "0" * 64,
        "occurred_at": format_time(NOW),
        "detail": {"outcome": "seized"},
    } | fields


async def test_a_receipt_naming_another_agency_is_refused_by_the_ledger_writer() -> None:
    world = World.demo()
    forged = sign_receipt(receipt_body(world, UZ_NODE, agency=TJ), world.signing[UZ_NODE])
    entry = await ledgered(world, receipt_subject("TJ-UZ"), forged)
    assert entry["type"] == "alert_rejected"
    assert entry["detail"]["reason"] == "wrong_agency"
    assert entry["actor_agency"] is None


async def test_a_receipt_for_a_pair_its_node_does_not_serve_is_refused() -> None:
    world = World.demo()
    body = receipt_body(world, UZ_NODE, border_pair="KG-TJ")
    entry = await ledgered(
        world, receipt_subject("KG-TJ"), sign_receipt(body, world.signing[UZ_NODE])
    )
    assert (entry["type"], entry["detail"]["reason"]) == ("alert_rejected", "pair_not_served")


async def test_a_squatted_receipt_id_takes_nothing_from_the_real_receipt() -> None:
    """UZ publishes first, under the receipt id and message id TJ's receipt used to have
    (both were uuid5 of public values). TJ's real receipt still gets into the stream and the
    ledger, under TJ's name."""
    world = World.demo()
    bus = FakePublisher()
    predicted = deterministic_receipt_id("some-alert", TJ_FOTEHOBOD, "delivered")
    squat = sign_receipt(
        receipt_body(world, UZ_NODE, receipt_id=predicted, type="alert_delivered"),
        world.signing[UZ_NODE],
    )
    await bus.publish(receipt_subject("TJ-UZ"), squat, msg_id=predicted)

    genuine = ReceiptPublisher(
        node=world.node(TJ_FOTEHOBOD),
        signer=world.signing[TJ_FOTEHOBOD],
        publisher=bus,
        clock=clock,
    )
    sent = await genuine.send(
        receipt_id=predicted,
        type=ReceiptType.DELIVERED,
        border_pair="TJ-UZ",
        alert_id="some-alert",
        kind="seizure",
        agreement_ids=["mou-tj-uz-2026"],
        envelope_sha256="0" * 64,
    )
    # (1) The bus did not drop it as a duplicate: its message id is not the predictable one.
    assert [msg_id for _, _, msg_id in bus.published][1] != predicted
    assert len(bus.published) == 2
    assert sent.stream_seq == 2
    # (2) The ledger keys records by their signer: both are recorded, each in its own name.
    store = FakeLedgerStore()
    writer = LedgerWriter(directory=world.directory, store=store, clock=clock)
    await writer.handle([InboundMessage(s, raw, i) for i, (s, raw, _) in enumerate(bus.published)])
    recorded = [json.loads(e.leaf_input) for e in store.entries]
    assert [(e["type"], e["actor_node"], e["actor_agency"]) for e in recorded] == [
        ("alert_delivered", UZ_NODE, UZ),
        ("alert_delivered", TJ_FOTEHOBOD, TJ),
    ]


async def test_a_record_from_an_unknown_node_is_refused() -> None:
    world = World.demo()
    body = receipt_body(world, UZ_NODE, node="blo-nowhere-uz")
    world.directory.signing_keys["blo-nowhere-uz"] = world.directory.signing_keys[UZ_NODE]
    entry = await ledgered(
        world, receipt_subject("TJ-UZ"), sign_receipt(body, world.signing[UZ_NODE])
    )
    assert (entry["type"], entry["detail"]["reason"]) == ("alert_rejected", "unknown_node")


async def test_a_passport_scan_sealed_where_no_agreement_allows_personal_data_is_refused() -> None:
    """Issue #17: a file part marked personal data follows the nominal rules, like the block."""
    world = World.demo()
    header = header_of(world)

    def sealed(nominal: bool) -> bytes:
        return seal_alert(
            header,
            {"case": CASE},
            [
                RecipientKey(UZ, world.directory.kem_keys[UZ], ("case", "file-1")),
                RecipientKey(TJ, world.directory.kem_keys[TJ], ("case", "file-1")),
            ],
            world.signing[UZ_NODE],
            files=[FilePart(card=b"{}", data=b"scan", nominal=nominal)],
        ).envelope

    subject = alert_subject("TJ-UZ", "seizure")
    # The control: the same file as a case photo is delivered.
    assert (await delivered_at(world, TJ_FOTEHOBOD, subject, sealed(False)))[0] == "delivered"
    await assert_refused_everywhere(
        world, subject, sealed(True), "nominal_not_allowed", (TJ_FOTEHOBOD,)
    )
