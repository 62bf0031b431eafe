"""The node's outbox of signed receipts: kept until JetStream acknowledges them.

Two kinds of receipt must reach the ledger, once, however long NATS is away:

- an alert imported from an offline package is delivered while the node may have no NATS at all;
  :class:`QueueingPublisher` is a ``Publisher`` that keeps each signed receipt in the queue
  instead of publishing it, so ``ReceiptPublisher`` and the delivery service work unchanged;
- a lookout hit (``services.hits``) is kept first, then published at once if the bus answers.

``ReceiptQueue`` (a Postgres table, ``db.pending_receipts``) holds the exact signed bytes and
the ``Nats-Msg-Id`` they go out under, unique per node; :class:`ReceiptRelay`, which the node
runs every few seconds, publishes what is not yet marked sent, oldest first, stops at the first
receipt the bus refuses, and marks a receipt sent only after JetStream acknowledged it.

A receipt published twice (a crash between the ack and the mark, or a hit published at once
while the relay also had it) is a duplicate of the same ``Nats-Msg-Id`` inside the stream's
window, and the ledger keys records by node and receipt id: it is recorded once either way.
Not for: receipts of live NATS delivery, which are published at once (their alert is
redelivered if that fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from blo_exchange.errors import BusError
from blo_exchange.services.ports import Publisher

__all__ = ["QueuedAck", "QueuedReceipt", "QueueingPublisher", "ReceiptQueue", "ReceiptRelay"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueuedReceipt:
    subject: str
    payload: bytes
    msg_id: str


class ReceiptQueue(Protocol):
    async def put(self, subject: str, payload: bytes, msg_id: str) -> bool:
        """Keep it (committed before this returns); False when ``msg_id`` was queued before."""
        ...

    async def unsent(self, limit: int) -> list[QueuedReceipt]:
        """The oldest receipts not yet marked sent, in the order they were kept."""
        ...

    async def mark_sent(self, msg_ids: Sequence[str]) -> None:
        """Record that JetStream acknowledged these (call only after the ack)."""
        ...


@dataclass(frozen=True)
class QueuedAck:
    """What ``publish`` answers for a receipt queued rather than published: no stream position."""

    seq: int = 0
    duplicate: bool = False


class QueueingPublisher:
    """A ``Publisher`` that queues: a receipt "published" here is durably kept for the relay."""

    def __init__(self, queue: ReceiptQueue) -> None:
        self._queue = queue

    async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> QueuedAck:
        stored = await self._queue.put(subject, payload, msg_id)
        return QueuedAck(duplicate=not stored)


class ReceiptRelay:
    """Publishes queued receipts when the bus takes them."""

    def __init__(self, queue: ReceiptQueue, bus: Publisher, *, batch: int = 100) -> None:
        self._queue = queue
        self._bus = bus
        self._batch = batch
        self._stopping = asyncio.Event()

    async def flush(self) -> int:
        """Publish every queued receipt, oldest first; stop at the first one the bus does not
        acknowledge (the link is still down: the rest wait too). Returns how many were sent."""
        sent = 0
        while True:
            queued = await self._queue.unsent(self._batch)
            done: list[str] = []
            try:
                for receipt in queued:
                    await self._bus.publish(receipt.subject, receipt.payload, msg_id=receipt.msg_id)
                    done.append(receipt.msg_id)
            except BusError:
                await self._queue.mark_sent(done)
                return sent + len(done)
            await self._queue.mark_sent(done)
            sent += len(done)
            if len(queued) < self._batch:
                return sent

    async def run(self, *, interval: float = 2.0) -> None:
        """Flush every ``interval`` seconds until :meth:`stop`."""
        while not self._stopping.is_set():
            try:
                sent = await self.flush()
                if sent:
                    log.info("published queued receipts", extra={"count": sent})
            except Exception:  # the database is away: the queue is kept, try again later
                log.warning("queued receipts: flush failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), timeout=interval)

    def stop(self) -> None:
        self._stopping.set()
