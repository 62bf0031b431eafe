"""A running node: its database, bus connection, keys, services and consumers, built from settings.

Built in the FastAPI lifespan (``bootstrap.app``) or by a test; :meth:`NodeRuntime.stop` finishes
the batches in hand, then closes NATS and the database pool.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.bootstrap.attachments import EXPIRY_EVERY, Attachments
from blo_exchange.bootstrap.delivery_lanes import delivery_consumers
from blo_exchange.bootstrap.directory import directory_copier, rebuild_copy, signed_directory
from blo_exchange.bootstrap.health import HealthMonitor
from blo_exchange.bootstrap.ledger_writer import LedgerWriterRuntime
from blo_exchange.bootstrap.lookout import LookoutRuntime
from blo_exchange.bootstrap.metrics import render_metrics
from blo_exchange.bootstrap.outages import ADAPTER_OUTAGES
from blo_exchange.bootstrap.reshare import ReshareRuntime
from blo_exchange.bootstrap.retention import RetentionRuntime
from blo_exchange.bootstrap.witness import WitnessRuntime
from blo_exchange.bus.connection import BusConnection, connect
from blo_exchange.bus.consumer import PullConsumer
from blo_exchange.bus.consumers import node_directory_durable
from blo_exchange.bus.permissions import inbox_prefix
from blo_exchange.bus.streams import ensure_streams
from blo_exchange.config import Settings, require_key_dir, source_domains
from blo_exchange.crypto.keyfiles import NodeKeys, load_node_keys
from blo_exchange.crypto.keys import HpkeSuite
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, open_ahead, session_factory
from blo_exchange.db.held_connections import HeldConnections
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.db.node_store import SqlIdempotencyStore, SqlInbox
from blo_exchange.db.pending_receipts import SqlReceiptQueue
from blo_exchange.db.statements import SignedDirectory
from blo_exchange.db.taxii_index import SqlTaxiiIndex
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger.audit import LedgerQueryRecorder
from blo_exchange.ledger.ports import LedgerReads
from blo_exchange.ledger.reads import AuditorReads
from blo_exchange.ledger.retention_report import RetentionAudit
from blo_exchange.services.attachments import AttachmentService
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.delivery import DeliveryService
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feed_events import FeedStreams
from blo_exchange.services.feedback import AnalystReceipts
from blo_exchange.services.ingest import IngestService
from blo_exchange.services.outages import Outages
from blo_exchange.services.ports import Directory, DirectoryView, Health, Inbox, Readiness
from blo_exchange.services.receipt_queue import ReceiptRelay
from blo_exchange.services.receipts import ReceiptPublisher
from blo_exchange.services.registry import Services
from blo_exchange.services.reshare import ReshareService
from blo_exchange.services.retention import RetainingTaxiiIndex
from blo_exchange.services.retention_review import RetentionReviews
from blo_exchange.services.retention_sweep import Clock
from blo_exchange.services.taxii_index import TaxiiIndex
from blo_exchange.services.uploads import UploadService

__all__ = ["NodeRuntime"]

log = logging.getLogger(__name__)

CONNECTIONS_AT_START = 10
"""Database connections a node opens before it serves (``db.engine.open_ahead``): the four it
holds and what a burst of a hundred alerts a second keeps busy. Half of what its pool may open
(deploy/README.md sizes ``max_connections`` for the whole pool)."""


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
    attachments: Attachments
    held: HeldConnections
    """The connections the accept's and the delivered batch's statements run on."""
    bulk_consumer: PullConsumer | None = None
    """The bulk lane's delivery consumer (items of ``:batch`` posts)."""
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
    lookout: LookoutRuntime | None = None
    retention: RetentionRuntime | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    services: Services = field(default_factory=Services)
    receipt_relay: ReceiptRelay | None = None
    """Publishes the receipts that offline-package imports queued (docs/contracts/packages.md)."""

    @classmethod
    async def start(cls, settings: Settings, *, retention_clock: Clock = utc_now) -> NodeRuntime:
        """``retention_clock``: the time the personal-data lifecycle runs on (a test's fake)."""
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
        held = HeldConnections(engine)
        await open_ahead(engine, CONNECTIONS_AT_START)
        await held.fill()  # four of them (``held_connections.HELD``)
        inbox = SqlInbox(sessions, held=held)
        receipts = ReceiptPublisher(node=node, signer=keys.signing, publisher=bus, clock=utc_now)
        retention = RetentionRuntime.build(
            node=node,
            key_dir=require_key_dir(settings),
            sessions=sessions,
            inner=inbox,
            directory=believed,
            receipts=receipts,
            clock=retention_clock,
            interval=settings.retention_sweep_seconds,
        )
        # Every service but the raw reads of tests and metrics stores and reads through it.
        retaining = retention.inbox
        feed = FeedService(node=node, kem_keys=keys.kem, directory=believed, inbox=retaining)
        attachments = Attachments.build(
            settings, node=node, bus=bus, sessions=sessions, vault=retention.files
        )
        delivery = DeliveryService(
            node=node,
            kem_keys=keys.kem,
            directory=believed,
            inbox=retaining,
            receipts=receipts,
            clock=utc_now,
            # Where a stored alert is handed on: the feed keeps its opened frame.
            on_stored=[feed.stored],
            on_files=attachments.service.expect,  # before the ack: files to fetch
        )
        live, bulk = delivery_consumers(reading, settings, node, delivery)
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
                require_terminal_certificates=settings.require_terminal_certificates,
            ),
            ingest=IngestService(
                node=node,
                signer=keys.signing,
                suite=HpkeSuite(settings.suite),
                directory=believed,
                idempotency=SqlIdempotencyStore(sessions, held=held),
                inbox=retaining,
                publisher=bus,
                clock=utc_now,
                stale_after=settings.stale_idempotency_seconds,
                uploads=attachments.uploads,
                attachments=attachments.service,
            ),
            receipts=receipts,
            delivery=delivery,
            feed=feed,
            consumer=live,
            bulk_consumer=bulk,
            health=HealthMonitor(
                bus=reading,
                engine=engine,
                consumer=live.spec,
                max_backlog=settings.ready_max_backlog,
            ),
            attachments=attachments,
            held=held,
        )
        runtime.tasks.append(asyncio.create_task(runtime.consumer.run(), name="delivery"))
        if runtime.bulk_consumer is not None:
            runtime.tasks.append(
                asyncio.create_task(runtime.bulk_consumer.run(), name="delivery-bulk")
            )
        runtime.tasks.append(
            asyncio.create_task(
                attachments.service.run(settings.attachment_interval), name="attachments"
            )
        )
        runtime.tasks.append(
            asyncio.create_task(attachments.uploads.run(EXPIRY_EVERY), name="upload-expiry")
        )
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
            inbox=retaining,
            records_first=retention.reviews.handle_record,
            reading=reading,
        )
        runtime.tasks.extend(runtime.reshare.start())
        # One outbox for every receipt kept until JetStream acknowledges it: imports' and hits'.
        outbox = SqlReceiptQueue(sessions, node_id=node.id)
        runtime.receipt_relay = ReceiptRelay(outbox, bus)
        runtime.tasks.append(
            asyncio.create_task(runtime.receipt_relay.run(), name="queued-receipts")
        )
        runtime.lookout = LookoutRuntime.build(
            node=node,
            kem_keys=keys.kem,
            engine=engine,
            held=held,
            directory=believed,
            inbox=retaining,
            feed=feed,
            receipts=receipts,
            outbox=outbox,
        )
        runtime.tasks.extend(runtime.lookout.start())
        # What delivery opened and ingest sealed is indexed without opening it again.
        delivery.on_stored.append(runtime.lookout.index.stored)
        runtime.ingest.on_sealed.append(runtime.lookout.index.sealed)
        retention.sweeper.listeners.append(runtime.lookout.index)
        retention.sweeper.listeners.append(attachments.service)  # nominal files' ciphertexts
        retention.sweeper.listeners.append(feed)  # no opened frame outlives the erasure
        runtime.retention = retention
        await retention.check_stream(bus, believed, node)
        runtime.tasks.extend(retention.start())
        runtime._register()
        if settings.run_witness:
            runtime.witness = WitnessRuntime.build(
                settings, store=runtime.ledger, directory=ledger_keys, trusted=trusted
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
                node=self.node,
                feed=self.feed,
                inbox=self._retaining(),
                receipts=self.receipts,
            ),
        )
        registry.add(LedgerReads, self.ledger)  # type: ignore[type-abstract]
        registry.add(
            AuditorReads,
            AuditorReads(
                store=self.ledger,
                directory=(
                    self.trusted
                    if self.trusted is not None
                    else self.directory
                    if self.ledger_keys is None
                    else self.ledger_keys
                ),
                statements=self.trusted,
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
        taxii: TaxiiIndex = SqlTaxiiIndex(self.engine)
        if self.retention is not None:
            taxii = RetainingTaxiiIndex(taxii, self.retention.inbox)
        registry.add(TaxiiIndex, taxii)  # type: ignore[type-abstract]
        if self.reshare is not None:
            registry.add(ReshareService, self.reshare.service)
        if self.lookout is not None:
            self.lookout.register(registry)
        if self.retention is not None:
            registry.add(RetentionReviews, self.retention.reviews)
            registry.add(
                RetentionAudit,
                RetentionAudit(
                    store=self.ledger,
                    directory=self.directory,
                    clock=self.retention.sweeper.clock,
                ),
            )
        registry.add(UploadService, self.attachments.uploads)
        registry.add(AttachmentService, self.attachments.service)

    def _retaining(self) -> Inbox:
        return self.inbox if self.retention is None else self.retention.inbox

    async def metrics(self) -> str:
        return await render_metrics(self)

    def ready(self) -> Readiness:
        """What /readyz reports: NATS connected, the alerts stream reachable, the database up,
        the delivery consumer caught up; as last checked in the background (:mod:`.health`)."""
        return self.health.current()

    async def stop(self) -> None:
        self.health.stop()
        self.consumer.stop()
        if self.bulk_consumer is not None:
            self.bulk_consumer.stop()
        self.attachments.service.stop()
        self.attachments.uploads.stop()
        if self.directory_consumer is not None:
            self.directory_consumer.stop()
        if self.reshare is not None:
            self.reshare.stop()
        if self.lookout is not None:
            self.lookout.stop()
        if self.retention is not None:
            self.retention.stop()
        if self.ledger_writer is not None:
            self.ledger_writer.stop()
        if self.witness is not None:
            self.witness.stop()
        if self.receipt_relay is not None:
            self.receipt_relay.stop()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=10.0)
        for task in self.tasks:
            task.cancel()
        await self.bus.close()
        await self.held.close()
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
