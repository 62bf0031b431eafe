"""A running node: its database, bus connection, keys, services and consumers, built from settings.

Built in the FastAPI lifespan (``bootstrap.app``) or by a test; :meth:`NodeRuntime.stop` finishes
the batches in hand, then closes NATS and the database pool.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.bootstrap.directory import directory_copier, rebuild_copy, signed_directory
from blo_exchange.bootstrap.health import HealthMonitor
from blo_exchange.bootstrap.ledger_writer import LedgerWriterRuntime
from blo_exchange.bootstrap.metrics import render_metrics
from blo_exchange.bootstrap.outages import ADAPTER_OUTAGES
from blo_exchange.bootstrap.reshare import ReshareRuntime
from blo_exchange.bootstrap.witness import WitnessRuntime
from blo_exchange.bus.connection import BusConnection, connect
from blo_exchange.bus.consumer import BusMessage, PullConsumer
from blo_exchange.bus.consumers import node_consumer_spec, node_directory_durable
from blo_exchange.bus.permissions import inbox_prefix
from blo_exchange.bus.streams import ensure_streams
from blo_exchange.config import Settings, require_key_dir, source_domains
from blo_exchange.crypto.keyfiles import NodeKeys, load_node_keys
from blo_exchange.crypto.keys import HpkeSuite
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.db.node_store import SqlIdempotencyStore, SqlInbox
from blo_exchange.db.statements import SignedDirectory
from blo_exchange.db.taxii_index import SqlTaxiiIndex
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger.audit import LedgerQueryRecorder
from blo_exchange.ledger.ports import LedgerReads
from blo_exchange.ledger.reads import AuditorReads
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.delivery import DeliveryService
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feed_events import FeedStreams
from blo_exchange.services.feedback import AnalystReceipts
from blo_exchange.services.ingest import IngestService
from blo_exchange.services.outages import Outages
from blo_exchange.services.ports import Directory, DirectoryView, Health, Readiness
from blo_exchange.services.receipts import ReceiptPublisher
from blo_exchange.services.registry import Services
from blo_exchange.services.reshare import ReshareService
from blo_exchange.services.taxii_index import TaxiiIndex

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
    health: HealthMonitor
    trusted: SignedDirectory | None = None
    """The signed directory the services believe, when roots are pinned (else ``directory``)."""
    ledger_engine: AsyncEngine | None = None
    """The ledger's database under the agency's witness role, when it is not ``engine``'s."""
    ledger_keys: SqlDirectory | None = None
    """The ledger database's keys (the ledger's, the witnesses'), when it is not ``engine``'s."""
    directory_consumer: PullConsumer | None = None
    ledger_writer: LedgerWriterRuntime | None = None
    witness: WitnessRuntime | None = None
    reshare: ReshareRuntime | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    services: Services = field(default_factory=Services)

    @classmethod
    async def start(cls, settings: Settings) -> NodeRuntime:
        engine = create_engine(settings.database_url.get_secret_value())
        sessions = session_factory(engine)
        directory = SqlDirectory(sessions)
        # One database per agency: the ledger is the hub's, read (and witnessed) under the
        # agency's own role on it, never through the agency's database.
        ledger_engine = (
            None
            if settings.ledger_database_url is None
            else create_engine(settings.ledger_database_url.get_secret_value(), pool_size=4)
        )
        ledger_sessions = sessions if ledger_engine is None else session_factory(ledger_engine)
        ledger_keys = directory if ledger_engine is None else SqlDirectory(ledger_sessions)
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
                tls_ca_file=settings.nats_ca_file,
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
            if ledger_engine is not None:
                await ledger_engine.dispose()
            raise
        # A leaf site's node publishes to the site's JetStream (accepted while the link is down)
        # and reads the hub's streams across the leaf, so nothing sent to it while the link was
        # down is missed: its durable consumers there resume where they were (deploy/README.md).
        reading = bus if not settings.consume_domain else bus.in_domain(settings.consume_domain)
        if trusted is not None:
            await rebuild_copy(reading, trusted)
        inbox = SqlInbox(sessions)
        receipts = ReceiptPublisher(node=node, signer=keys.signing, publisher=bus, clock=utc_now)
        feed = FeedService(node=node, kem_keys=keys.kem, directory=believed, inbox=inbox)
        consumer_spec = dataclasses.replace(
            node_consumer_spec(
                node,
                max_deliver=settings.max_deliver,
                batch=settings.consumer_batch,
                ack_wait=settings.ack_wait,
            ),
            create=settings.manage_bus,
        )
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
            ledger_engine=ledger_engine,
            ledger_keys=None if ledger_engine is None else ledger_keys,
            inbox=inbox,
            ledger=SqlLedgerStore(ledger_sessions),
            auth=Authenticator(
                directory=directory,
                clock=utc_now,
                node=node,
                admit_unbound=settings.admit_unbound_principals,
            ),
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
                reading,
                consumer_spec,
                handler=lambda batch: _deliver(delivery, feed, batch),
                on_poison=lambda m: _set_aside(delivery, m),
            ),
            health=HealthMonitor(
                bus=reading,
                engine=engine,
                consumer=consumer_spec,
                max_backlog=settings.ready_max_backlog,
            ),
        )
        runtime.tasks.append(asyncio.create_task(runtime.consumer.run(), name="delivery"))
        await runtime.health.check()  # /readyz has an answer from the first request on
        runtime.tasks.append(asyncio.create_task(runtime.health.run(), name="health"))
        if trusted is not None:
            runtime.directory_consumer = directory_copier(
                reading, trusted, durable=node_directory_durable(node), create=settings.manage_bus
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
            reading=reading,
        )
        runtime.tasks.extend(runtime.reshare.start())
        runtime._register()
        if settings.run_witness:
            runtime.witness = WitnessRuntime.build(
                settings, store=runtime.ledger, directory=ledger_keys
            )
            runtime.tasks.extend(runtime.witness.start())
        if settings.run_ledger_writer:
            runtime.ledger_writer = LedgerWriterRuntime.build(
                settings,
                bus=bus,
                sessions=ledger_sessions,
                directory=ledger_keys,
                trusted=trusted,
            )
            runtime.tasks.extend(runtime.ledger_writer.start())
        return runtime

    def _register(self) -> None:
        """What the edges (``api``, ``web``) may use, by the type they know it by."""
        registry = self.services
        registry.add(Node, self.node)
        registry.add(Authenticator, self.auth)
        registry.add(IngestService, self.ingest)
        registry.add(FeedService, self.feed)
        registry.add(Outages, ADAPTER_OUTAGES)
        registry.add(FeedStreams, FeedStreams(self.feed, ADAPTER_OUTAGES))
        registry.add(
            AnalystReceipts,
            AnalystReceipts(
                node=self.node, feed=self.feed, inbox=self.inbox, receipts=self.receipts
            ),
        )
        registry.add(LedgerReads, self.ledger)  # type: ignore[type-abstract]
        registry.add(
            AuditorReads,
            AuditorReads(
                store=self.ledger,
                directory=self.directory if self.ledger_keys is None else self.ledger_keys,
                origin=self.settings.ledger_origin,
                recorder=LedgerQueryRecorder(
                    node=self.node, signer=self.keys.signing, publisher=self.bus, clock=utc_now
                ),
                clock=utc_now,
            ),
        )
        registry.add(Directory, self.directory)  # type: ignore[type-abstract]
        registry.add(
            DirectoryView,  # type: ignore[type-abstract]
            _DirectoryAnswer(self.directory, self.trusted),
        )
        registry.add(Health, self)  # type: ignore[type-abstract]
        registry.add(TaxiiIndex, SqlTaxiiIndex(self.engine))  # type: ignore[type-abstract]
        if self.reshare is not None:
            registry.add(ReshareService, self.reshare.service)

    async def metrics(self) -> str:
        return await render_metrics(self)

    def ready(self) -> Readiness:
        """What /readyz reports: NATS connected, the alerts stream reachable, the database up,
        the delivery consumer caught up; as last checked in the background (:mod:`.health`)."""
        return self.health.current()

    async def stop(self) -> None:
        self.health.stop()
        self.consumer.stop()
        if self.directory_consumer is not None:
            self.directory_consumer.stop()
        if self.reshare is not None:
            self.reshare.stop()
        if self.ledger_writer is not None:
            self.ledger_writer.stop()
        if self.witness is not None:
            self.witness.stop()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10.0)
        for task in self.tasks:
            task.cancel()
        await self.bus.close()
        await self.engine.dispose()
        if self.ledger_engine is not None:
            await self.ledger_engine.dispose()


@dataclass(frozen=True)
class _DirectoryAnswer:
    """``/v1/directory``: the database's directory and, where roots are pinned, the signed
    statements' nodes, keys and agreements, with the statements themselves."""

    directory: SqlDirectory
    trusted: SignedDirectory | None

    async def snapshot(self) -> dict[str, Any]:
        snapshot = await self.directory.snapshot()
        if self.trusted is not None:
            snapshot |= await self.trusted.snapshot()
        return snapshot


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
