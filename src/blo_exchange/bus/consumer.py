"""Durable pull consumers: fetch a batch, hand it to a handler, which acks after its commit.

The loop survives everything a message or the network can throw at it: a handler that raises
makes the batch be redelivered (nak with a delay), never kills the loop. A message that keeps
failing stops being redelivered after ``max_deliver`` attempts; handlers record such poison
messages before that (see the delivery and ledger services).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JsError

from blo_exchange.bus.connection import BusConnection

__all__ = ["BusMessage", "ConsumerSpec", "PullConsumer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subjects: tuple[str, ...]
    max_deliver: int = 20
    ack_wait: float = 30.0
    batch: int = 64


class BusMessage:
    """What a handler sees of one JetStream message."""

    def __init__(self, msg: Msg) -> None:
        self._msg = msg
        meta = msg.metadata
        self.subject: str = msg.subject
        self.data: bytes = msg.data
        self.headers: dict[str, str] = dict(msg.headers or {})
        self.stream_seq: int = int(meta.sequence.stream)
        self.num_delivered: int = int(meta.num_delivered)

    async def ack(self) -> None:
        await self._msg.ack()

    async def nak(self, delay: float | None = None) -> None:
        await self._msg.nak(delay=delay)

    async def term(self) -> None:
        await self._msg.term()


Handler = Callable[[Sequence[BusMessage]], Awaitable[None]]


class PullConsumer:
    def __init__(self, bus: BusConnection, spec: ConsumerSpec, handler: Handler) -> None:
        self._bus = bus
        self._spec = spec
        self._handler = handler
        self._stopping = asyncio.Event()
        self.batches = 0
        self.failures = 0

    async def ensure(self) -> None:
        spec = self._spec
        config = ConsumerConfig(
            durable_name=spec.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=spec.ack_wait,
            max_deliver=spec.max_deliver,
            filter_subjects=list(spec.filter_subjects),
            max_ack_pending=max(1000, spec.batch * 4),
        )
        await self._bus.js.add_consumer(spec.stream, config)

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; finishes the batch in hand before returning."""
        spec = self._spec
        while not self._stopping.is_set():
            try:
                await self.ensure()
                sub = await self._bus.js.pull_subscribe_bind(
                    durable=spec.durable, stream=spec.stream
                )
                break
            except (NatsError, JsError, TimeoutError) as exc:
                log.warning("consumer %s not ready: %s", spec.durable, type(exc).__name__)
                await self._sleep(1.0)
        else:
            return
        while not self._stopping.is_set():
            try:
                msgs = await sub.fetch(batch=spec.batch, timeout=1.0)
            except NatsTimeoutError:
                continue
            except (NatsError, JsError, TimeoutError) as exc:
                log.warning("fetch on %s failed: %s", spec.durable, type(exc).__name__)
                await self._sleep(0.5)
                continue
            batch = [BusMessage(m) for m in msgs]
            try:
                await self._handler(batch)
                self.batches += 1
            except Exception:
                # The handler did not commit: let JetStream redeliver, a little later.
                self.failures += 1
                log.exception("handler of %s failed; batch will be redelivered", spec.durable)
                for message in batch:
                    with contextlib.suppress(NatsError, JsError):
                        await message.nak(delay=min(30.0, 0.5 * message.num_delivered))
                await self._sleep(0.5)
        with contextlib.suppress(NatsError, JsError):
            await sub.unsubscribe()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)
