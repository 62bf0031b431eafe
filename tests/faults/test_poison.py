"""Poison messages and outages in the pull consumer, against a real nats-server.

A message that keeps failing is set aside and recorded, and never holds back the messages beside
it; a failure that hits every message (the database is down) never drops one, however long it
lasts; a stop hands back the batch fetched ahead; batches handled at once each stand alone; and a
poison message of the delivery service is recorded like a rejection.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from blo_exchange.bus.connection import BusConnection, connect
from blo_exchange.bus.consumer import BusMessage, ConsumerSpec, PullConsumer
from blo_exchange.bus.streams import ALERTS_STREAM, ensure_streams
from blo_exchange.embedded import NatsServer
from tests.unit.services.fakes import FakeInbox, FakePublisher
from tests.unit.services.test_services_delivery import SUBJECT, TJ, published_alert
from tests.unit.services.world import World

FAST = (0.05,)


@pytest.fixture
async def bus(runtime_dir: Path) -> AsyncIterator[BusConnection]:
    server = NatsServer(Path(tempfile.mkdtemp(prefix="nats-poison-", dir=runtime_dir)))
    await asyncio.to_thread(server.start)
    connection = await connect(server.url, name="poison-test")
    try:
        await ensure_streams(connection.js, duplicate_window=60.0)
        yield connection
    finally:
        await connection.close()
        await asyncio.to_thread(server.stop)


async def publish(bus: BusConnection, payloads: Sequence[bytes]) -> None:
    for i, payload in enumerate(payloads):
        await bus.publish(SUBJECT, payload, msg_id=f"m-{i}")


async def until(condition: object, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not callable(condition) or not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def spec(durable: str, max_deliver: int) -> ConsumerSpec:
    return ConsumerSpec(
        stream=ALERTS_STREAM.name,
        durable=durable,
        filter_subjects=ALERTS_STREAM.subjects,
        max_deliver=max_deliver,
        ack_wait=5.0,
        batch=16,
        backoff=FAST,
    )


async def test_poison_is_set_aside_and_never_blocks_the_others(bus: BusConnection) -> None:
    payloads = [b"ok-0", b"poison", b"ok-2", b"ok-3", b"ok-4"]
    await publish(bus, payloads)
    handled: list[bytes] = []
    set_aside: list[tuple[bytes, int]] = []

    async def handler(batch: Sequence[BusMessage]) -> None:
        if any(m.data == b"poison" for m in batch):
            raise RuntimeError("this message breaks the handler")
        for message in batch:
            handled.append(message.data)
            await message.ack()

    async def on_poison(message: BusMessage) -> None:
        set_aside.append((message.data, message.num_delivered))

    consumer = PullConsumer(bus, spec("poison", 3), handler, on_poison=on_poison)
    task = asyncio.create_task(consumer.run())
    try:
        # The others pass on the first round, before the poison's retries are used up.
        await until(lambda: len(handled) == 4)
        assert not set_aside
        await until(lambda: set_aside)
        await asyncio.sleep(0.5)  # nothing more comes: the poison was terminated
    finally:
        consumer.stop()
        await task
    assert sorted(handled) == [p for p in payloads if p != b"poison"]
    assert set_aside == [(b"poison", 3)]
    assert consumer.poisoned == 1
    info = await bus.js.consumer_info(ALERTS_STREAM.name, "poison")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_an_outage_longer_than_max_deliver_drops_nothing(bus: BusConnection) -> None:
    """Every message fails (the database is down) well past max_deliver, and recording the
    poison fails too: nothing is set aside, nothing dropped, all arrive once it is back."""
    payloads = [f"m-{i}".encode() for i in range(5)]
    await publish(bus, payloads)
    handled: list[bytes] = []
    failures = 0

    async def handler(batch: Sequence[BusMessage]) -> None:
        nonlocal failures
        if failures < 40:
            failures += 1
            raise ConnectionRefusedError("database is down")
        for message in batch:
            handled.append(message.data)
            await message.ack()

    async def on_poison(message: BusMessage) -> None:
        raise ConnectionRefusedError("database is down")

    consumer = PullConsumer(bus, spec("outage", 2), handler, on_poison=on_poison)
    task = asyncio.create_task(consumer.run())
    try:
        await until(lambda: sorted(handled) == payloads, timeout=30.0)
    finally:
        consumer.stop()
        await task
    assert consumer.poisoned == 0


async def test_the_next_batch_is_fetched_meanwhile_and_handed_back_at_stop(
    bus: BusConnection,
) -> None:
    """While a batch is handled the next one is already fetched (both out, unacked); a stop
    then hands the fetched one back at once, so it is not left to wait out ``ack_wait``."""
    payloads = [f"m-{i}".encode() for i in range(40)]
    await publish(bus, payloads)
    handled: list[bytes] = []
    out_while_handling: list[int] = []

    async def handler(batch: Sequence[BusMessage]) -> None:
        if not handled:
            await asyncio.sleep(0.5)  # the prefetch arrives meanwhile
            info = await bus.js.consumer_info(ALERTS_STREAM.name, "prefetch")
            out_while_handling.append(info.num_ack_pending)
            consumer.stop()
        for message in batch:
            handled.append(message.data)
            await message.ack()

    consumer = PullConsumer(bus, spec("prefetch", 3), handler)
    await consumer.run()
    assert out_while_handling == [32]  # this batch of 16 and the next one
    assert handled == payloads[:16]
    # The 16 fetched ahead were handed back (nak): they come again at once, not after ack_wait.

    again = PullConsumer(bus, spec("prefetch", 3), handler)
    task = asyncio.create_task(again.run())
    try:
        await until(lambda: len(handled) == 40, timeout=3.0)  # well before ack_wait (5 s)
    finally:
        again.stop()
        await task
    assert sorted(handled) == sorted(payloads)


async def test_with_parallel_two_batches_are_handled_at_once_each_acked_on_its_own(
    bus: BusConnection,
) -> None:
    """The bulk lane's setting: the second batch is handled while the first one waits (its
    commit, its receipts); nothing is lost or handled twice, and a batch that fails is retried
    one message at a time without holding back the other."""
    payloads = [f"m-{i}".encode() for i in range(48)]
    await publish(bus, payloads)
    handled: list[bytes] = []
    second_started = asyncio.Event()
    overlapped: list[bool] = []
    calls = 0

    async def handler(batch: Sequence[BusMessage]) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:  # waits for a commit that comes only once another batch is under way
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(second_started.wait(), timeout=5.0)
                overlapped.append(True)
            raise ConnectionResetError("the commit failed")
        second_started.set()
        for message in batch:
            handled.append(message.data)
            await message.ack()

    consumer = PullConsumer(bus, dataclasses.replace(spec("parallel", 3), parallel=2), handler)
    task = asyncio.create_task(consumer.run())
    try:
        await until(lambda: sorted(handled) == sorted(payloads), timeout=10.0)
    finally:
        consumer.stop()
        await task
    assert overlapped == [True]  # the second batch ran while the first one waited
    assert len(handled) == len(set(handled)) == 48
    assert consumer.failures == 1
    info = await bus.js.consumer_info(ALERTS_STREAM.name, "parallel")
    assert (info.num_pending, info.num_ack_pending) == (0, 0)


async def test_an_existing_consumer_is_brought_to_unlimited_server_redelivery(
    bus: BusConnection,
) -> None:
    """Deployments created before: the server's max_deliver was 20, which drops messages."""
    from nats.js.api import AckPolicy, ConsumerConfig

    await bus.js.add_consumer(
        ALERTS_STREAM.name,
        ConsumerConfig(
            durable_name="old", ack_policy=AckPolicy.EXPLICIT, max_deliver=20, ack_wait=5.0
        ),
    )

    async def handler(batch: Sequence[BusMessage]) -> None:
        return None

    await PullConsumer(bus, spec("old", 20), handler).ensure()
    info = await bus.js.consumer_info(ALERTS_STREAM.name, "old")
    assert info.config.max_deliver == -1


async def test_delivery_records_a_poison_message_like_a_rejection() -> None:
    world = World.demo()
    raw = await published_alert(world)
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = await world.delivery(TJ, inbox, receipts).set_aside(SUBJECT, raw, 9)
    assert (outcome.status, outcome.reason) == ("rejected", "handler_failed")
    assert outcome.alert_id is not None
    assert inbox.items == {}
    assert [(r.reason, r.stream_seq, r.alert_id) for r in inbox.rejections] == [
        ("handler_failed", 9, outcome.alert_id)
    ]
    body = json.loads(receipts.published[0][1])["receipt"]
    assert (body["type"], body["alert_id"]) == ("alert_rejected", outcome.alert_id)
