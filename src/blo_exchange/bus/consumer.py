"""Durable pull consumers: fetch a batch, hand it to a handler, which acks after its commit.

The loop survives everything a message or the network can throw at it: a handler that raises
never kills the loop. When a batch fails, its messages are handled one at a time, so one bad
message does not hold back those beside it; each that fails alone is redelivered later (nak with
a growing delay, ``backoff``). After ``max_deliver`` failed deliveries a message is poison: the
``on_poison`` callback records it and it is set aside (terminated). The server itself never stops
redelivering (its ``max_deliver`` is unlimited): an outage of the database must not silently drop
messages, and a poison message whose recording fails is simply tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JsError

from blo_exchange.bus.connection import BusConnection

__all__ = ["BusMessage", "ConsumerSpec", "PoisonHandler", "PullConsumer"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ConsumerSpec:
    stream: str
    durable: str
    filter_subjects: tuple[str, ...]
    max_deliver: int = 20  # failed deliveries before a message is set aside; -1: never
    ack_wait: float = 30.0  # what a crashed consumer's fetched messages wait to be redelivered
    batch: int = 64
    create: bool = True  # False where NATS permissions leave creating it to the operator
    backoff: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0, 30.0)  # nak delay by delivery count
    parallel: int = 1  # batches handled at once (each acked on its own)

    def delay(self, num_delivered: int) -> float:
        return self.backoff[min(max(num_delivered, 1), len(self.backoff)) - 1]


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
PoisonHandler = Callable[[BusMessage], Awaitable[None]]


class PullConsumer:
    def __init__(
        self,
        bus: BusConnection,
        spec: ConsumerSpec,
        handler: Handler,
        *,
        on_poison: PoisonHandler | None = None,
    ) -> None:
        self._bus = bus
        self._spec = spec
        self._handler = handler
        self._on_poison = on_poison
        self._stopping = asyncio.Event()
        self.batches = 0
        self.failures = 0
        self.poisoned = 0

    async def ensure(self) -> None:
        spec = self._spec
        config = ConsumerConfig(
            durable_name=spec.durable,
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=spec.ack_wait,
            max_deliver=-1,  # set aside by us, recorded, never dropped by the server
            filter_subjects=list(spec.filter_subjects),
            max_ack_pending=max(1000, spec.batch * 4),
        )
        await self._bus.js.add_consumer(spec.stream, config)

    @property
    def spec(self) -> ConsumerSpec:
        return self._spec

    def stop(self) -> None:
        self._stopping.set()

    async def run(self) -> None:
        """Run until :meth:`stop`; finishes the batch in hand before returning."""
        spec = self._spec
        while not self._stopping.is_set():
            try:
                if spec.create:
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

        def fetch() -> asyncio.Future[list[Msg]]:
            return asyncio.ensure_future(sub.fetch(batch=spec.batch, timeout=1.0))

        # The next batch is fetched while this one is handled (the round trip and the server's
        # wait overlap the handler's work; measured: 16% of a drain's time was fetches). With
        # ``spec.parallel`` above 1, that many batches are handled at once: one's checks run
        # while another waits for its commit and its receipts' acks. At most ``parallel + 1``
        # batches are out at once, well within max_ack_pending.
        next_batch: asyncio.Future[list[Msg]] | None = None
        handling: set[asyncio.Task[None]] = set()
        try:
            while not self._stopping.is_set():
                fetching, next_batch = next_batch or fetch(), None
                try:
                    msgs = await fetching
                except TimeoutError:
                    # Nothing arrived within the second. nats-py raises its own TimeoutError or
                    # asyncio's, depending on where the wait ended; neither is a failure.
                    continue
                except (NatsError, JsError) as exc:
                    log.warning("fetch on %s failed: %s", spec.durable, type(exc).__name__)
                    await self._sleep(0.5)
                    continue
                batch = [BusMessage(m) for m in msgs]
                if not self._stopping.is_set():
                    next_batch = fetch()
                if spec.parallel <= 1:
                    await self._handle(batch)
                    continue
                task = asyncio.create_task(self._handle(batch))
                handling.add(task)
                task.add_done_callback(handling.discard)
                while len(handling) >= spec.parallel:
                    await asyncio.wait(set(handling), return_when=asyncio.FIRST_COMPLETED)
            if handling:  # the batches in hand are finished
                await asyncio.gather(*handling)
        except asyncio.CancelledError:
            # Cut short (a stop that ran out of time): what was not acked is handed back at once
            # (each batch being handled does so as it is cancelled), rather than left to wait
            # out ack_wait.
            for task in handling:
                task.cancel()
            await asyncio.gather(*handling, return_exceptions=True)
            if next_batch is not None:
                await asyncio.shield(_release_fetched(next_batch))
            raise
        if next_batch is not None:  # fetched for a batch that will not be handled now
            await _release_fetched(next_batch)
        with contextlib.suppress(NatsError, JsError):
            await sub.unsubscribe()

    async def _handle(self, batch: Sequence[BusMessage]) -> None:
        try:
            await self._handler(batch)
            self.batches += 1
        except asyncio.CancelledError:
            await asyncio.shield(_release(batch))
            raise
        except Exception:
            # The handler did not commit. Try each message alone: the others go through, and
            # the one at fault is redelivered later or, in the end, set aside.
            self.failures += 1
            log.exception("handler of %s failed; handling its batch one by one", self._spec.durable)
            for message in batch:
                await self._handle_alone(message, retry=len(batch) > 1)
            await self._sleep(0.5)

    async def _handle_alone(self, message: BusMessage, *, retry: bool) -> None:
        if retry:
            try:
                await self._handler([message])
            except Exception:
                log.warning("message %d on %s failed", message.stream_seq, self._spec.durable)
            else:
                return
        limit = self._spec.max_deliver
        if self._on_poison is not None and 0 < limit <= message.num_delivered:
            try:
                await self._on_poison(message)
                await message.term()
            except Exception:
                log.exception("could not set aside message %d; it stays", message.stream_seq)
            else:
                self.poisoned += 1
                log.error(
                    "set aside message %d on %s after %d deliveries",
                    message.stream_seq,
                    self._spec.durable,
                    message.num_delivered,
                )
                return
        with contextlib.suppress(NatsError, JsError):
            await message.nak(delay=self._spec.delay(message.num_delivered))

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)


async def _release_fetched(fetching: asyncio.Future[list[Msg]]) -> None:
    """Wait for a fetch under way (it ends within its timeout) and hand back what it got."""
    try:
        msgs = await fetching
    except (NatsError, JsError, TimeoutError):
        return
    await _release([BusMessage(m) for m in msgs])


async def _release(batch: Sequence[BusMessage]) -> None:
    """Nak without delay every message of ``batch`` not yet acked (those are refused quietly)."""
    for message in batch:
        with contextlib.suppress(NatsError, JsError, TimeoutError):
            await message.nak()
