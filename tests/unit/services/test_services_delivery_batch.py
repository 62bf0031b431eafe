"""Delivery of a fetched batch, with fakes: one insert, receipts once, acks only after it all."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from blo_exchange.bootstrap.delivery_lanes import deliver_and_ack
from blo_exchange.bus.consumer import BusMessage
from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import envelope_sha256
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import utc_now
from blo_exchange.services import delivery as delivery_module
from blo_exchange.services.delivery import Incoming
from blo_exchange.services.ports import Completion, InboxItem, StoredAlert
from tests.unit.services.fakes import FakeAck, FakeInbox, FakePublisher
from tests.unit.services.world import World

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
SUBJECT = "blo.v1.alerts.KG-TJ.seizure"


@dataclass
class CountingPublisher(FakePublisher):
    """Every publish call, duplicates included: what the bus was asked, not what it kept."""

    calls: list[str] = field(default_factory=list)

    async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> FakeAck:
        self.calls.append(json.loads(payload)["receipt"]["receipt_id"])
        return await super().publish(subject, payload, msg_id=msg_id)


@dataclass
class FakeMessage:
    """What ``deliver_and_ack`` uses of a bus message."""

    subject: str
    data: bytes
    stream_seq: int
    num_delivered: int = 1
    acked: bool = False
    naked: list[float | None] = field(default_factory=list)

    async def ack(self) -> None:
        self.acked = True

    async def nak(self, delay: float | None = None) -> None:
        self.naked.append(delay)


async def alerts(world: World, count: int) -> list[bytes]:
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
    for n in range(count):
        await world.ingest(KG).submit(world.terminal(KG), submission, f"key-{n:04d}")
    return [payload for _, payload, _ in world.publisher.published[-count:]]


def flipped(raw: bytes, field: bytes = b'"sig":"') -> bytes:
    """``raw`` with one character changed inside ``field``'s value (a signature by default)."""
    changed = bytearray(raw)
    position = changed.index(field) + 20
    changed[position] = ord("A") if changed[position] != ord("A") else ord("B")
    return bytes(changed)


async def test_a_batch_is_one_insert_and_each_receipt_is_published_once() -> None:
    world = World.demo()
    raws = await alerts(world, 5)
    inbox, receipts = FakeInbox(), CountingPublisher()
    service = world.delivery(TJ, inbox, receipts)
    batch = [Incoming(SUBJECT, raw, n + 1) for n, raw in enumerate(raws)]
    batch.insert(2, Incoming(SUBJECT, b"not json", 10))  # a malformed message among them
    batch.append(Incoming(SUBJECT, flipped(raws[0]), 11))  # and a forged copy of the first

    outcomes = await service.handle_batch(batch)

    assert [o.status for o in outcomes] == ["delivered"] * 2 + ["rejected"] + ["delivered"] * 3 + [
        "rejected"
    ]
    assert [o.reason for o in outcomes if o.status == "rejected"] == ["malformed", "bad_signature"]
    assert inbox.batches == [5]  # one insert for the five good ones
    assert sorted(i.feed_seq for i in inbox.items.values()) == [1, 2, 3, 4, 5]
    assert [(r.reason, r.stream_seq) for r in inbox.rejections] == [
        ("malformed", 10),
        ("bad_signature", 11),
    ]
    assert len(receipts.calls) == len(set(receipts.calls)) == 7  # 5 delivered, 2 rejected
    types = sorted(json.loads(p)["receipt"]["type"] for _, p, _ in receipts.published)
    assert types == ["alert_delivered"] * 5 + ["alert_rejected"] * 2

    # Redelivered whole: nothing stored twice, the same receipts (the bus drops the copies).
    again = await service.handle_batch(batch)
    assert [o.status for o in again].count("duplicate") == 5
    assert len(inbox.items) == 5
    assert len(receipts.published) == 7


async def test_a_database_failure_mid_batch_acks_nothing_and_sends_no_receipt() -> None:
    world = World.demo()
    raws = await alerts(world, 3)
    inbox, receipts = FakeInbox(fail_batches=1), CountingPublisher()
    service = world.delivery(TJ, inbox, receipts)
    messages = [FakeMessage(SUBJECT, raw, n + 1) for n, raw in enumerate(raws)]

    with pytest.raises(OSError, match="went away"):
        await deliver_and_ack(service, _as_bus(messages))
    assert not any(m.acked for m in messages)
    assert inbox.items == {}
    assert receipts.calls == []  # no receipt for what was not stored

    await deliver_and_ack(service, _as_bus(messages))  # redelivered, the database back
    assert all(m.acked for m in messages)
    assert len(inbox.items) == 3
    assert len(receipts.published) == 3


async def test_a_poison_item_fails_its_batch_and_alone_only_itself() -> None:
    """The consumer retries a failed batch one message at a time (``bus.consumer``): the others
    are stored and acked, the poison is not acked (redelivered, then set aside)."""
    world = World.demo()
    raws = await alerts(world, 4)
    poison_id = json.loads(raws[1])["header"]["alert_id"]

    @dataclass
    class PoisonInbox(FakeInbox):
        async def add_batch(self, items: Sequence[InboxItem]) -> list[InboxItem | None]:
            if any(item.alert_id == poison_id for item in items):
                raise RuntimeError("this row breaks the database")
            return await super().add_batch(items)

    inbox, receipts = PoisonInbox(), CountingPublisher()
    service = world.delivery(TJ, inbox, receipts)
    messages = [FakeMessage(SUBJECT, raw, n + 1) for n, raw in enumerate(raws)]
    with pytest.raises(RuntimeError):
        await deliver_and_ack(service, _as_bus(messages))
    assert not any(m.acked for m in messages)
    for message in messages:  # what PullConsumer does next
        with pytest.raises(RuntimeError) if message is messages[1] else contextlib.nullcontext():
            await deliver_and_ack(service, _as_bus([message]))
    assert [m.acked for m in messages] == [True, False, True, True]
    assert poison_id not in {alert_id for _, alert_id in inbox.items}
    assert len(inbox.items) == 3

    outcome = await service.set_aside(SUBJECT, raws[1], 2)  # after BLO_MAX_DELIVER
    assert (outcome.status, outcome.reason) == ("rejected", "handler_failed")
    assert [r.reason for r in inbox.rejections] == ["handler_failed"]


async def test_stored_alerts_go_to_every_hook_once_and_a_failing_hook_undoes_nothing() -> None:
    world = World.demo()
    raws = await alerts(world, 3)
    inbox, receipts = FakeInbox(), CountingPublisher()
    handed: list[list[StoredAlert]] = []

    async def keep(stored: Sequence[StoredAlert]) -> None:
        handed.append(list(stored))

    async def broken(stored: Sequence[StoredAlert]) -> None:
        raise ValueError("an indexer that fails")

    service = world.delivery(TJ, inbox, receipts)
    service.on_stored.extend([broken, keep])
    batch = [Incoming(SUBJECT, raw, n + 1) for n, raw in enumerate(raws)]

    outcomes = await service.handle_batch(batch[:2])
    assert [o.status for o in outcomes] == ["delivered", "delivered"]
    assert service.counts["hook_failed"] == 1
    await service.handle_batch(batch)  # two redelivered, one new

    assert [[a.item.feed_seq for a in stored] for stored in handed] == [[1, 2], [3]]
    first = handed[0][0]
    assert first.opened.header["alert_id"] == first.item.alert_id
    assert json.loads(first.opened.parts["case"])  # the plaintext, in memory
    assert first.signature_key_id == world.signing[KG].key_id
    assert len(receipts.published) == 3


async def test_the_bulk_lane_subject_is_delivered_and_checked_like_the_live_one() -> None:
    world = World.demo()
    (raw,) = await alerts(world, 1)
    inbox, receipts = FakeInbox(), CountingPublisher()
    service = world.delivery(TJ, inbox, receipts)
    outcomes = await service.handle_batch(
        [
            Incoming(SUBJECT + ".bulk", raw, 1),
            Incoming("blo.v1.alerts.KG-TJ.risk.bulk", raw, 2),  # replayed onto another kind
            Incoming(SUBJECT + ".slow", raw, 3),  # no such lane
        ]
    )
    assert [(o.status, o.reason) for o in outcomes] == [
        ("delivered", None),
        ("rejected", "subject_mismatch"),
        ("rejected", "bad_subject"),
    ]


def _as_bus(messages: list[FakeMessage]) -> list[BusMessage]:
    return messages  # type: ignore[return-value]


async def test_the_origin_defers_its_own_alert_until_its_own_copy_is_committed() -> None:
    """The origin's consumer meets its alert before ingest committed the own copy: handed back
    (not checked, stored or acked); on the next delivery it is recognised, or, the own copy
    lost in a crash, checked and stored like any other."""
    world = World.demo()
    (raw,) = await alerts(world, 1)
    inbox, receipts = FakeInbox(), CountingPublisher()
    service = world.delivery(KG, inbox, receipts)
    first = FakeMessage(SUBJECT, raw, 1)
    await deliver_and_ack(service, _as_bus([first]))
    assert (first.acked, first.naked) == (False, [1.0])
    assert inbox.items == {}
    assert service.counts["deferred"] == 1

    again = FakeMessage(SUBJECT, raw, 1, num_delivered=2)  # the own copy never came
    await deliver_and_ack(service, _as_bus([again]))
    assert again.acked
    assert [item.alert_id for item in inbox.items.values()] == [
        json.loads(raw)["header"]["alert_id"]
    ]
    assert receipts.calls == []  # the origin sends itself no delivered receipt


async def test_own_alerts_another_process_stored_are_settled_by_one_read_not_checked() -> None:
    """The origin restarted (or another of its processes sealed them): it meets its own alerts
    with nothing in memory. Those whose exact bytes the inbox holds are duplicates, found by
    one read for the batch, with nothing verified and nothing handed back; bytes that differ
    from the stored ones under the same alert id take every step, and a tampered copy is
    rejected."""
    world = World.demo()
    inbox = FakeInbox()
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
    for n in range(3):
        await world.ingest(KG, inbox=inbox).submit(world.terminal(KG), submission, f"key-{n}")
    raws = [raw for _, raw, _ in world.publisher.published[-3:]]
    restarted = FakeInbox(items=dict(inbox.items))  # the rows, not the process's memory
    reads: list[int] = []
    stored_digests = restarted.stored_digests

    async def counted(node_id: str, alert_ids: Sequence[str]) -> dict[str, str]:
        reads.append(len(alert_ids))
        return await stored_digests(node_id, alert_ids)

    restarted.stored_digests = counted  # type: ignore[method-assign]
    world.directory.signing_keys[KG] = {}  # anything verified now would be rejected
    receipts = CountingPublisher()
    service = world.delivery(KG, restarted, receipts)
    document = json.loads(raws[2])
    value = document["signature"]["sig"]
    document["signature"]["sig"] = ("B" if value[0] == "A" else "A") + value[1:]
    tampered = canonical_json(document)  # well-formed, same alert id, not the stored bytes
    batch = [FakeMessage(SUBJECT, raw, n + 1) for n, raw in enumerate(raws[:2])]
    batch.append(FakeMessage(SUBJECT, tampered, 3, num_delivered=2))
    await deliver_and_ack(service, _as_bus(batch))
    assert reads == [3]
    assert [m.acked for m in batch] == [True, True, True]
    assert [m.naked for m in batch] == [[], [], []]
    assert (service.counts["duplicate"], service.counts["rejected"]) == (2, 1)
    assert service.counts["deferred"] == 0
    assert restarted.batches == []  # nothing stored
    assert [r.reason for r in restarted.rejections] == ["unknown_key"]


async def test_the_origin_waits_for_its_own_copy_when_this_process_is_storing_it() -> None:
    """Met while ingest is between its publish and its own copy's commit: delivery waits for
    that commit and acks the message as a duplicate, neither handed back nor stored twice."""
    world = World.demo()
    (raw,) = await alerts(world, 1)
    inbox, receipts = FakeInbox(), CountingPublisher()
    service = world.delivery(KG, inbox, receipts)
    digest = envelope_sha256(raw)
    own = InboxItem(
        node_id=KG,
        alert_id=json.loads(raw)["header"]["alert_id"],
        agency_id="kg-border-service",
        origin_agency="kg-border-service",
        origin_node=KG,
        border_pair="KG-TJ",
        kind="seizure",
        tlp="AMBER",
        created_at=utc_now(),
        stream_seq=1,
        envelope=raw,
        envelope_sha256=digest,
    )
    message = FakeMessage(SUBJECT, raw, 1)
    await inbox.idempotency.begin("terminal", "key", "sha", own.alert_id, stale_after=60)
    with inbox.sealing(digest):
        delivering = asyncio.create_task(deliver_and_ack(service, _as_bus([message])))
        await asyncio.sleep(0.05)
        assert not delivering.done()  # waiting for the commit, not handing the message back
        await inbox.add(own, completes=Completion("terminal", "key", {}))
    await delivering
    assert (message.acked, message.naked) == (True, [])
    assert service.counts["duplicate"] == 1
    assert service.counts["deferred"] == 0
    assert len(inbox.items) == 1
    assert receipts.calls == []

    # Another process's alert, or one whose ingest died: not waited for, handed back at once.
    (other,) = await alerts(world, 1)
    late = FakeMessage(SUBJECT, other, 2)
    await asyncio.wait_for(deliver_and_ack(service, _as_bus([late])), timeout=1.0)
    assert (late.acked, late.naked) == (False, [1.0])


async def test_a_batch_waits_for_its_own_copies_once_in_all_not_once_per_alert(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Several own alerts whose ingest is stuck (a stalled database): the batch waits at most
    OWN_COPY_WAIT in all, then hands them all back, well within its ack wait."""
    monkeypatch.setattr(delivery_module, "OWN_COPY_WAIT", 0.2)
    world = World.demo()
    raws = await alerts(world, 3)
    inbox = FakeInbox()
    service = world.delivery(KG, inbox, CountingPublisher())
    messages = [FakeMessage(SUBJECT, raw, n) for n, raw in enumerate(raws, 1)]
    with contextlib.ExitStack() as stuck:
        for raw in raws:
            stuck.enter_context(inbox.sealing(envelope_sha256(raw)))
        await deliver_and_ack(service, _as_bus(messages))
    assert [m.naked for m in messages] == [[1.0]] * 3
    assert len(inbox.waits) == 3
    assert sum(inbox.waits) <= 0.2 + 0.05  # the first takes the budget, the others what is left
