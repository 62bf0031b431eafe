"""The ledger writer's consumers: alerts and receipts from the bus into the Postgres ledger.

Runs inside a node process (``BLO_RUN_LEDGER_WRITER=true``) or alone (``blo-exchange
ledger-writer``). One durable consumer per stream, shared by every writer instance: JetStream
hands each message to one of them, the advisory lock orders their appends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import BusMessage, ConsumerSpec, PullConsumer
from blo_exchange.bus.streams import ALERTS_STREAM, RECEIPTS_STREAM
from blo_exchange.config import Settings
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger.db import SessionFactory
from blo_exchange.ledger.directory import SqlDirectory
from blo_exchange.ledger.store import SqlLedgerStore
from blo_exchange.services.ledger_writer import InboundMessage, LedgerWriter

__all__ = ["LedgerWriterRuntime"]


@dataclass
class LedgerWriterRuntime:
    writer: LedgerWriter
    consumers: list[PullConsumer]

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        bus: BusConnection,
        sessions: SessionFactory,
        directory: SqlDirectory,
    ) -> LedgerWriterRuntime:
        writer = LedgerWriter(directory=directory, store=SqlLedgerStore(sessions), clock=utc_now)

        async def handle(batch: Sequence[BusMessage]) -> None:
            await writer.handle([InboundMessage(m.subject, m.data, m.stream_seq) for m in batch])
            # Acked only after the commit above: a crash before this line means redelivery,
            # which the event-id check turns into a no-op.
            for message in batch:
                await message.ack()

        consumers = [
            PullConsumer(
                bus,
                ConsumerSpec(
                    stream=stream.name,
                    durable=f"ledger-writer-{stream.name.lower()}",
                    filter_subjects=stream.subjects,
                    max_deliver=-1,
                    batch=256,
                ),
                handler=handle,
            )
            for stream in (ALERTS_STREAM, RECEIPTS_STREAM)
        ]
        return cls(writer=writer, consumers=consumers)

    def start(self) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(c.run(), name=f"ledger-writer-{i}")
            for i, c in enumerate(self.consumers)
        ]

    def stop(self) -> None:
        for consumer in self.consumers:
            consumer.stop()


async def run_standalone(settings: Settings) -> None:
    """``blo-exchange ledger-writer``: run until SIGINT/SIGTERM, then finish the batch in hand."""
    from blo_exchange.assembly.signals import stop_event
    from blo_exchange.bus.connection import connect
    from blo_exchange.bus.streams import ensure_streams
    from blo_exchange.ledger.db import create_engine, session_factory

    stop = stop_event()
    engine = create_engine(settings.database_url.get_secret_value())
    bus = await connect(
        settings.nats_url.get_secret_value(),
        name="ledger-writer",
        credentials=settings.nats_credentials,
        timeout=settings.nats_timeout,
    )
    try:
        await ensure_streams(bus.js, duplicate_window=settings.duplicate_window)
        sessions = session_factory(engine)
        runtime = LedgerWriterRuntime.build(
            settings, bus=bus, sessions=sessions, directory=SqlDirectory(sessions)
        )
        tasks = runtime.start()
        await stop.wait()
        runtime.stop()
        await asyncio.wait(tasks, timeout=10.0)
    finally:
        await bus.close()
        await engine.dispose()
