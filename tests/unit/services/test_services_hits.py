"""Hit receipts: who may say a lookout hit where, and that a hit survives a bus that is down."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from blo_exchange.crypto.receipt import UnverifiedReceipt, sign_receipt
from blo_exchange.domain.ids import format_time
from blo_exchange.domain.subjects import receipt_subject
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.ledger.records import check_record
from blo_exchange.ledger.writer import InboundMessage, LedgerWriter
from blo_exchange.services.hits import HitReceipts, reported_hit
from blo_exchange.services.ports import InboxItem
from blo_exchange.services.receipt_queue import ReceiptRelay
from blo_exchange.services.receipts import ReceiptPublisher
from tests.unit.services.fakes import FakeAck, FakeLedgerStore, FakePublisher, FakeReceiptQueue
from tests.unit.services.world import NOW, World, clock

TJ_KARAMYK = "blo-karamyk-tj"
KG_KARAMYK = "blo-karamyk-kg"
KG = "kg-border-service"


def hit_body(world: World, signer: str, **fields: Any) -> dict[str, Any]:
    node = world.node(signer)
    return {
        "receipt_id": "6a1f0b8e-0000-5000-8000-000000000001",
        "type": "hit",
        "alert_id": "some-risk-alert",
        "node": node.id,
        "agency": node.agency_id,
        "border_pair": "KG-TJ",
        "kind": "risk",
        "agreement_ids": ["mou-kg-tj-2026"],
        "envelope_sha256": "0" * 64,
        "occurred_at": format_time(NOW),
        "detail": {"crossing_point": "TJ-KARAMYK", "principal": "t", "matched": "plate"},
    } | fields


async def ledgered(world: World, raw: bytes) -> dict[str, Any]:
    store = FakeLedgerStore()
    writer = LedgerWriter(directory=world.directory, store=store, clock=clock)
    await writer.handle([InboundMessage(receipt_subject("KG-TJ"), raw, 1)])
    [entry] = store.entries
    return dict(json.loads(entry.leaf_input))


async def test_a_genuine_hit_is_ledgered_and_verifies_offline() -> None:
    world = World.demo()
    raw = sign_receipt(hit_body(world, TJ_KARAMYK), world.signing[TJ_KARAMYK])
    entry = await ledgered(world, raw)
    assert (entry["type"], entry["actor_agency"]) == ("hit", "tj-drug-control-agency")
    assert entry["detail"]["crossing_point"] == "TJ-KARAMYK"
    store = FakeLedgerStore()
    await LedgerWriter(directory=world.directory, store=store, clock=clock).handle(
        [InboundMessage(receipt_subject("KG-TJ"), raw, 1)]
    )
    keys = {n: {k: v.verify_key()} for n, v in world.signing.items() for k in [v.key_id]}
    agencies = {n.id: n.agency_id for n in world.directory.nodes.values()}
    assert check_record(store.entries[0].leaf_input, keys, agencies) is None
    hit = reported_hit(entry)
    assert hit is not None
    assert (hit.crossing_point, hit.agency, hit.matched) == (
        "TJ-KARAMYK",
        entry["actor_agency"],
        "plate",
    )


async def test_a_hit_in_another_agencys_name_is_refused_by_the_ledger_writer() -> None:
    world = World.demo()
    forged = sign_receipt(hit_body(world, TJ_KARAMYK, agency=KG), world.signing[TJ_KARAMYK])
    entry = await ledgered(world, forged)
    assert (entry["type"], entry["detail"]["reason"]) == ("alert_rejected", "wrong_agency")
    assert entry["actor_agency"] is None


async def test_a_hit_at_a_crossing_its_node_does_not_serve_is_refused() -> None:
    world = World.demo()
    elsewhere = {"crossing_point": "KG-KARAMYK", "principal": "t", "matched": "plate"}
    forged = sign_receipt(hit_body(world, TJ_KARAMYK, detail=elsewhere), world.signing[TJ_KARAMYK])
    entry = await ledgered(world, forged)
    assert (entry["type"], entry["detail"]["reason"]) == (
        "alert_rejected",
        "crossing_point_not_served",
    )
    missing = sign_receipt(hit_body(world, TJ_KARAMYK, detail={}), world.signing[TJ_KARAMYK])
    assert (await ledgered(world, missing))["detail"]["reason"] == "crossing_point_not_served"


async def test_a_hit_on_a_seizure_alert_is_refused() -> None:
    world = World.demo()
    raw = sign_receipt(hit_body(world, TJ_KARAMYK, kind="seizure"), world.signing[TJ_KARAMYK])
    assert (await ledgered(world, raw))["detail"]["reason"] == "not_a_risk_alert"


def row() -> InboxItem:
    return InboxItem(
        node_id=TJ_KARAMYK,
        alert_id="some-risk-alert",
        agency_id="tj-drug-control-agency",
        origin_agency=KG,
        origin_node=KG_KARAMYK,
        border_pair="KG-TJ",
        kind="risk",
        tlp="AMBER",
        created_at=NOW,
        stream_seq=1,
        envelope=b"{}",
        envelope_sha256="0" * 64,
        feed_seq=1,
    )


async def record(hits: HitReceipts, at: datetime = NOW) -> Any:
    return await hits.record(
        row=row(),
        header={"agreement_ids": ["mou-kg-tj-2026"]},
        crossing_point="TJ-KARAMYK",
        principal_id="terminal-tj",
        matched=FieldKind.PLATE,
        checked_at=at,
    )


def hit_receipts(world: World, bus: FakePublisher, outbox: FakeReceiptQueue) -> HitReceipts:
    receipts = ReceiptPublisher(
        node=world.node(TJ_KARAMYK), signer=world.signing[TJ_KARAMYK], publisher=bus, clock=clock
    )
    return HitReceipts(receipts=receipts, outbox=outbox, node_id=TJ_KARAMYK, publish_timeout=0.05)


async def test_a_hit_is_kept_while_the_bus_is_down_and_published_once_after() -> None:
    world = World.demo()
    bus = FakePublisher(fail=True)
    outbox = FakeReceiptQueue()
    hits = hit_receipts(world, bus, outbox)
    relay = ReceiptRelay(outbox, bus)
    sent = await record(hits)
    assert not sent.published
    assert bus.published == []
    [kept] = await outbox.unsent(10)
    assert await relay.flush() == 0  # still down: nothing lost, nothing sent
    assert await outbox.unsent(10) == [kept]

    bus.fail = False
    assert await relay.flush() == 1
    assert bus.published == [(receipt_subject("KG-TJ"), kept.payload, kept.msg_id)]
    assert UnverifiedReceipt.parse(kept.payload).body["receipt_id"] == sent.receipt_id
    assert await relay.flush() == 0  # published once
    # The same check retried (same officer, same moment) is the same receipt, not a second hit.
    again = await record(hits)
    assert again.receipt_id == sent.receipt_id
    assert len(outbox.rows) == 1
    assert len(bus.published) == 1


async def test_a_hit_the_bus_takes_at_once_is_kept_and_marked_sent() -> None:
    bus = FakePublisher()
    outbox = FakeReceiptQueue()
    sent = await record(hit_receipts(World.demo(), bus, outbox))
    assert sent.published
    [(_, raw, msg_id)] = bus.published
    assert [(r.payload, r.msg_id) for r in outbox.rows] == [(raw, msg_id)]
    assert await outbox.unsent(10) == []  # the relay has nothing left to send


async def test_a_hit_the_bus_never_acknowledges_is_not_marked_sent() -> None:
    class Silent(FakePublisher):
        async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> FakeAck:
            await asyncio.sleep(10)  # no ack within the officer's wait
            raise AssertionError("unreachable")

    outbox = FakeReceiptQueue()
    hits = hit_receipts(World.demo(), Silent(), outbox)
    sent = await record(hits)
    assert not sent.published
    assert hits.queued == 1
    assert len(await outbox.unsent(10)) == 1  # waiting for the relay
