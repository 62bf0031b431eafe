"""A running node: its database, bus connection, keys, services and consumers, built from settings.

Built in the FastAPI lifespan (``api.app``) or by a test; :meth:`NodeRuntime.stop` finishes the
batches in hand, then closes NATS and the database pool.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.bootstrap.directory import directory_copier, signed_directory
from blo_exchange.bootstrap.ledger_writer import LedgerWriterRuntime
from blo_exchange.bootstrap.reshare import ReshareRuntime
from blo_exchange.bus.connection import BusConnection, connect
from blo_exchange.bus.consumer import BusMessage, PullConsumer
from blo_exchange.bus.consumers import node_consumer_spec, node_directory_durable
from blo_exchange.bus.permissions import inbox_prefix
from blo_exchange.bus.streams import ALERTS_STREAM, ensure_streams
from blo_exchange.config import Settings, require_key_dir, source_domains
from blo_exchange.crypto.keyfiles import NodeKeys, load_node_keys
from blo_exchange.crypto.keys import HpkeSuite
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.db.node_store import SqlIdempotencyStore, SqlInbox
from blo_exchange.db.statements import SignedDirectory
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.delivery import DeliveryService
from blo_exchange.services.feed import FeedService
from blo_exchange.services.ingest import IngestService
from blo_exchange.services.ports import Directory
from blo_exchange.services.receipts import ReceiptPublisher

__all__ = ["NodeRuntime"]

log = logging.getLogger(__name__)


@dataclass
class NodeRuntime:
    settings: Settings
    node: Node
    keys: NodeKeys
    engine: AsyncEngine
    bus: BusConnection
    directory: SqlDirectory
    inbox: SqlInbox
    ledger: SqlLedgerStore
    auth: Authenticator
    ingest: IngestService
    receipts: ReceiptPublisher
    delivery: DeliveryService
    feed: FeedService
    consumer: PullConsumer
    trusted: SignedDirectory | None = None
    """The signed directory the services believe, when roots are pinned (else ``directory``)."""
    directory_consumer: PullConsumer | None = None
    ledger_writer: LedgerWriterRuntime | None = None
    reshare: ReshareRuntime | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings) -> NodeRuntime:
        engine = create_engine(settings.database_url.get_secret_value())
        sessions = session_factory(engine)
        directory = SqlDirectory(sessions)
        bus: BusConnection | None = None
        try:
            trusted = signed_directory(settings, sessions, directory)
            believed: Directory = directory if trusted is None else trusted
            node = await believed.node(settings.node_id)
            keys = load_node_keys(require_key_dir(settings))
            bus = await connect(
                settings.nats_url.get_secret_value(),
                name=f"node-{node.id}",
                credentials=settings.nats_credentials,
                nkey_seed_file=settings.nats_nkey_file,
                inbox_prefix=None if settings.nats_nkey_file is None else inbox_prefix(node.id),
                timeout=settings.nats_timeout,
            )
            if settings.manage_bus:
                await ensure_streams(
                    bus.js,
                    duplicate_window=settings.duplicate_window,
                    replicas=settings.stream_replicas,
                    source_domains=source_domains(settings),
                )
        except BaseException:
            if bus is not None:
                await bus.close()
            await engine.dispose()
            raise
        inbox = SqlInbox(sessions)
        receipts = ReceiptPublisher(node=node, signer=keys.signing, publisher=bus, clock=utc_now)
        feed = FeedService(node=node, kem_keys=keys.kem, directory=believed, inbox=inbox)
        delivery = DeliveryService(
            node=node,
            kem_keys=keys.kem,
            directory=believed,
            inbox=inbox,
            receipts=receipts,
            clock=utc_now,
        )
        runtime = cls(
            settings=settings,
            node=node,
            keys=keys,
            engine=engine,
            bus=bus,
            directory=directory,
            trusted=trusted,
            inbox=inbox,
            ledger=SqlLedgerStore(sessions),
            auth=Authenticator(directory=directory, clock=utc_now),
            ingest=IngestService(
                node=node,
                signer=keys.signing,
                suite=HpkeSuite(settings.suite),
                directory=believed,
                idempotency=SqlIdempotencyStore(sessions),
                inbox=inbox,
                publisher=bus,
                clock=utc_now,
                stale_after=settings.stale_idempotency_seconds,
            ),
            receipts=receipts,
            delivery=delivery,
            feed=feed,
            consumer=PullConsumer(
                bus,
                dataclasses.replace(
                    node_consumer_spec(
                        node, max_deliver=settings.max_deliver, batch=settings.consumer_batch
                    ),
                    create=settings.manage_bus,
                ),
                handler=lambda batch: _deliver(delivery, feed, batch),
                on_poison=lambda m: _set_aside(delivery, m),
            ),
        )
        runtime.tasks.append(asyncio.create_task(runtime.consumer.run(), name="delivery"))
        if trusted is not None:
            runtime.directory_consumer = directory_copier(
                bus, trusted, durable=node_directory_durable(node), create=settings.manage_bus
            )
            runtime.tasks.append(
                asyncio.create_task(runtime.directory_consumer.run(), name="directory")
            )
        runtime.reshare = ReshareRuntime.build(
            settings,
            node=node,
            keys=keys,
            bus=bus,
            sessions=sessions,
            directory=believed,
            inbox=inbox,
        )
        runtime.tasks.extend(runtime.reshare.start())
        if settings.run_ledger_writer:
            runtime.ledger_writer = LedgerWriterRuntime.build(
                settings, bus=bus, sessions=sessions, directory=directory, trusted=trusted
            )
            runtime.tasks.extend(runtime.ledger_writer.start())
        return runtime

    async def ready(self) -> dict[str, bool]:
        """What /readyz reports: NATS connected, the alerts stream reachable, the database up."""
        checks = {"nats": self.bus.connected, "stream": False, "database": False}
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.bus.js.stream_info(ALERTS_STREAM.name), 2.0)
            checks["stream"] = True
        with contextlib.suppress(Exception):
            async with self.engine.connect() as conn:
                await asyncio.wait_for(conn.execute(text("SELECT 1")), 2.0)
            checks["database"] = True
        return checks

    async def stop(self) -> None:
        self.consumer.stop()
        if self.directory_consumer is not None:
            self.directory_consumer.stop()
        if self.reshare is not None:
            self.reshare.stop()
        if self.ledger_writer is not None:
            self.ledger_writer.stop()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10.0)
        for task in self.tasks:
            task.cancel()
        await self.bus.close()
        await self.engine.dispose()


async def _deliver(
    delivery: DeliveryService, feed: FeedService, batch: Sequence[BusMessage]
) -> None:
    for message in batch:
        outcome = await delivery.handle(message.subject, message.data, message.stream_seq)
        await message.ack()
        if outcome.status == "delivered":
            # Wake the live feeds now, not after the batch: the first alert of a burst should
            # not wait for the last one's receipt.
            await feed.notify()


async def _set_aside(delivery: DeliveryService, message: BusMessage) -> None:
    await delivery.set_aside(message.subject, message.data, message.stream_seq)
