"""What ``/readyz`` reports, kept up to date in the background so that the probe answers at once.

A probe that asked NATS and Postgres itself answered as slowly as the slowest of them: over two
seconds with NATS down, and slow under load too, when it queued for a pooled connection behind the
requests. Here one task asks every ``interval`` (each question bounded by ``timeout``) and the probe
reads the last answers, every two seconds: a probe sees a change within about that, and an idle
node does not make four JetStream API calls and two queries a second to keep it (as at 0.5 s).
Answers older than ``stale_after`` count as failures: a checker that is itself stuck must not
keep reporting the last good state.

Not here: liveness (``/livez`` only says the process answers) and NATS's own view of the consumer,
which ``/metrics`` reports as ``blo_consumer_pending``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import ConsumerSpec
from blo_exchange.services.ports import Readiness

__all__ = ["HealthMonitor"]

log = logging.getLogger(__name__)


class HealthMonitor:
    def __init__(
        self,
        *,
        bus: BusConnection,
        engine: AsyncEngine,
        consumer: ConsumerSpec,
        max_backlog: int,
        interval: float = 2.0,
        timeout: float = 1.0,
        stale_after: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._bus = bus
        self._engine = engine
        self._consumer = consumer
        self.max_backlog = max_backlog
        self._interval = interval
        self._timeout = timeout
        self._stale_after = stale_after
        self._clock = clock
        self._last = Readiness()
        self._stopping = asyncio.Event()

    def current(self) -> Readiness:
        """The last answers; all failed when they are older than ``stale_after`` (or none yet)."""
        if self._clock() - self._last.checked_at > self._stale_after:
            return Readiness(checked_at=self._last.checked_at)
        return self._last

    async def check(self) -> Readiness:
        """Ask everything once, concurrently, each question bounded by ``timeout``."""
        stream, database, backlog = await asyncio.gather(
            self._stream(), self._database(), self._backlog()
        )
        nats = self._bus.connected
        self._last = Readiness(
            nats=nats,
            stream=stream,
            database=database,
            delivery=backlog is not None and backlog <= self.max_backlog,
            backlog=backlog,
            checked_at=self._clock(),
        )
        return self._last

    async def run(self) -> None:
        """Check every ``interval`` until :meth:`stop`."""
        while not self._stopping.is_set():
            try:
                await self.check()
            except Exception:  # the checker must outlive whatever it checks
                log.exception("readiness check failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._interval)

    def stop(self) -> None:
        self._stopping.set()

    async def _stream(self) -> bool:
        try:
            await asyncio.wait_for(self._bus.js.stream_info(self._consumer.stream), self._timeout)
        except Exception:  # any failure is "not reachable now"; the next round asks again
            return False
        return True

    async def _database(self) -> bool:
        async def ping() -> None:
            async with self._engine.connect() as conn:
                await conn.execute(text("SELECT 1"))

        try:
            await asyncio.wait_for(ping(), self._timeout)
        except Exception:
            return False
        return True

    async def _backlog(self) -> int | None:
        spec = self._consumer
        try:
            info = await asyncio.wait_for(
                self._bus.js.consumer_info(spec.stream, spec.durable), self._timeout
            )
        except Exception:
            return None
        return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
