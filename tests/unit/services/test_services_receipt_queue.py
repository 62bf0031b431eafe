"""Receipts queued while NATS is away (services.receipt_queue): kept, then published once."""

from __future__ import annotations

from blo_exchange.services.receipt_queue import QueueingPublisher, ReceiptRelay
from tests.unit.services.fakes import FakeAck, FakePublisher, FakeReceiptQueue


async def test_queued_receipts_wait_for_the_bus_and_are_published_once() -> None:
    queue = FakeReceiptQueue()
    publisher = QueueingPublisher(queue)
    for n in range(3):
        await publisher.publish("blo.v1.receipts.KG-TJ", f"r{n}".encode(), msg_id=f"m{n}")
    again = await publisher.publish("blo.v1.receipts.KG-TJ", b"r0", msg_id="m0")
    assert again.duplicate
    bus = FakePublisher(fail=True)
    relay = ReceiptRelay(queue, bus, batch=2)

    assert await relay.flush() == 0  # the link is down: nothing is marked sent
    assert len(await queue.unsent(10)) == 3

    bus.fail = False
    assert await relay.flush() == 3
    assert [msg_id for _, _, msg_id in bus.published] == ["m0", "m1", "m2"]
    assert await relay.flush() == 0  # nothing twice
    assert len(bus.published) == 3


async def test_a_link_lost_mid_flush_keeps_the_rest_for_later() -> None:
    queue = FakeReceiptQueue()
    for n in range(3):
        await queue.put("s", b"r", f"m{n}")

    class Flaky(FakePublisher):
        """The link drops as m1 goes out, the first time."""

        dropped = False

        async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> FakeAck:
            self.fail = msg_id == "m1" and not self.dropped
            self.dropped = self.dropped or self.fail
            return await super().publish(subject, payload, msg_id=msg_id)

    bus = Flaky()
    relay = ReceiptRelay(queue, bus)
    assert await relay.flush() == 1
    assert [r.msg_id for r in await queue.unsent(10)] == ["m1", "m2"]
    assert await relay.flush() == 2
