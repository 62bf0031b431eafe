"""The ledger writer's consumers and tickers: bus and directory into the Postgres ledger.

Runs inside a node process (``BLO_RUN_LEDGER_WRITER=true``) or alone (``blo-exchange
ledger-writer``), once per ledger: it signs only what it appended itself (``ledger.journal``,
its state file beside its key), so a second writer running at the same time would make both
stop. Three durable consumers (a restarted writer takes them over): alerts, receipts, and the
auditors' query records on ``blo.v1.ledger.queries`` (only that subject of the ledger stream: its
checkpoints are the writer's own output). Two tickers: one cuts checkpoints, one reads the
directory and records its changes (keys registered and revoked, agreements changed).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from blo_exchange.bootstrap.directory import directory_copier, rebuild_copy, signed_directory
from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import BusMessage, ConsumerSpec, PullConsumer
from blo_exchange.bus.permissions import LEDGER_WRITER_USER, inbox_prefix
from blo_exchange.bus.streams import ALERTS_STREAM, LEDGER_STREAM, RECEIPTS_STREAM
from blo_exchange.config import Settings, require_key_dir, source_domains
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.db.statements import SignedDirectory
from blo_exchange.domain.ids import utc_now
from blo_exchange.domain.subjects import LEDGER_QUERIES_SUBJECT
from blo_exchange.errors import NotFound
from blo_exchange.ledger.checkpoints import (
    Checkpointer,
    LedgerForkError,
    load_or_create_ledger_key,
    note_signer,
)
from blo_exchange.ledger.entries import DirectoryState
from blo_exchange.ledger.journal import WriterJournal
from blo_exchange.ledger.writer import InboundMessage, LedgerWriter

__all__ = ["CHECKPOINT_INTERVAL", "DIRECTORY_INTERVAL", "LedgerWriterRuntime"]

CHECKPOINT_INTERVAL = 1.0
"""Seconds between checkpoint attempts besides the one after each batch."""

DIRECTORY_INTERVAL = 1.0
"""Seconds between reads of the directory for changes to record."""

log = logging.getLogger(__name__)


@dataclass
class LedgerWriterRuntime:
    writer: LedgerWriter
    consumers: list[PullConsumer]
    checkpointer: Checkpointer
    journal_ready: _JournalGate
    directory: SqlDirectory
    origin: str
    public_key: bytes
    key_id: str
    trusted: SignedDirectory | None = None
    _stopping: asyncio.Event | None = None

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        bus: BusConnection,
        sessions: SessionFactory,
        directory: SqlDirectory,
        trusted: SignedDirectory | None = None,
    ) -> LedgerWriterRuntime:
        """With ``trusted`` (roots pinned), the writer verifies messages and records directory
        changes from signed statements only; ``directory`` then only receives the ledger key."""
        store = SqlLedgerStore(sessions)
        writer = LedgerWriter(
            directory=directory if trusted is None else trusted, store=store, clock=utc_now
        )
        key_file = settings.ledger_key_file or require_key_dir(settings) / "ledger.key"
        key = load_or_create_ledger_key(key_file)
        checkpointer = Checkpointer(
            store=store,
            signer=note_signer(settings.ledger_origin, key),
            origin=settings.ledger_origin,
            publisher=bus,
            journal_path=settings.ledger_state_file or key_file.with_name("ledger.state"),
        )
        journal_ready = _JournalGate(writer, checkpointer)

        async def handle(batch: Sequence[BusMessage]) -> None:
            await journal_ready()
            await writer.handle([InboundMessage(m.subject, m.data, m.stream_seq) for m in batch])
            # Acked only after the commit above: a crash before this line means redelivery,
            # which the event-id check turns into a no-op.
            for message in batch:
                await message.ack()
            await _cut(checkpointer)

        sources = [
            (
                f"ledger-writer-{ALERTS_STREAM.name.lower()}",
                ALERTS_STREAM.name,
                ALERTS_STREAM.subjects,
            ),
            (
                f"ledger-writer-{RECEIPTS_STREAM.name.lower()}",
                RECEIPTS_STREAM.name,
                RECEIPTS_STREAM.subjects,
            ),
            ("ledger-writer-queries", LEDGER_STREAM.name, (LEDGER_QUERIES_SUBJECT,)),
        ]
        consumers = [
            PullConsumer(
                bus,
                ConsumerSpec(
                    stream=stream,
                    durable=durable,
                    filter_subjects=subjects,
                    max_deliver=-1,
                    batch=256,
                ),
                handler=handle,
            )
            for durable, stream, subjects in sources
        ]
        if trusted is not None:
            # The writer's own verified copy of the statements; record_directory ledgers what
            # they grant (keys registered and revoked, agreement versions).
            consumers.append(
                directory_copier(bus, trusted, durable="ledger-writer-directory", create=True)
            )
        return cls(
            writer=writer,
            consumers=consumers,
            checkpointer=checkpointer,
            journal_ready=journal_ready,
            directory=directory,
            trusted=trusted,
            origin=settings.ledger_origin,
            public_key=key.public_bytes(),
            key_id=key.key_id,
        )

    _tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def start(self) -> list[asyncio.Task[None]]:
        self._stopping = asyncio.Event()
        tasks = [
            asyncio.create_task(c.run(), name=f"ledger-writer-{i}")
            for i, c in enumerate(self.consumers)
        ]
        tasks.append(asyncio.create_task(self._checkpoints(self._stopping), name="checkpoints"))
        tasks.append(
            asyncio.create_task(self._directory_changes(self._stopping), name="directory-changes")
        )
        self._tasks = list(tasks)
        return tasks

    def stop(self) -> None:
        for consumer in self.consumers:
            consumer.stop()
        if self._stopping is not None:
            self._stopping.set()

    async def close(self, timeout: float = 10.0) -> None:
        """Stop, and wait until the batch in hand is committed and acked (or ``timeout``)."""
        self.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    async def register_key(self) -> None:
        """Publish the ledger key in the directory (a no-op when it is there already)."""
        await self.directory.add_key(
            key_id=self.key_id,
            owner_kind="ledger",
            owner_id=self.origin,
            alg="Ed25519",
            public=self.public_key,
        )

    async def _checkpoints(self, stopping: asyncio.Event) -> None:
        try:
            await self.register_key()
        except Exception:
            log.exception("could not register the ledger key in the directory")
        while not stopping.is_set():
            try:
                await self.journal_ready()
            except Exception:
                log.exception("could not read the ledger writer's state")
            else:
                await _cut(self.checkpointer)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), CHECKPOINT_INTERVAL)

    async def record_directory(self) -> list[int]:
        """Append the directory's changes the ledger does not have yet; their indexes. With
        signed statements, the node keys they grant are also kept as rows of the ledger's own
        database, where auditors' answers and exports read them (a rotated or revoked key
        included), since no agency's database is the ledger's."""
        await self.journal_ready()
        source = self.directory if self.trusted is None else self.trusted
        state = await source.directory_state()
        appended = await self.writer.record_directory(state)
        if self.trusted is not None and (appended or not self._keys_mirrored):
            await self._mirror_node_keys(state)
            self._keys_mirrored = True
        return appended

    _keys_mirrored: bool = False

    async def _mirror_node_keys(self, state: DirectoryState) -> None:
        for key in state.keys:
            if key.owner_kind != "node":
                continue
            await self.directory.add_key(
                key_id=key.key_id,
                owner_kind="node",
                owner_id=key.owner_id,
                alg=key.alg,
                public=key.public,
            )
            if key.revoked_at is not None:
                with contextlib.suppress(NotFound):  # marked already
                    await self.directory.revoke_key(key.key_id, key.revoked_at)

    async def _directory_changes(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            try:
                if await self.record_directory():
                    await _cut(self.checkpointer)
            except Exception:
                log.exception("could not record directory changes")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), DIRECTORY_INTERVAL)


class _JournalGate:
    """Loads (or adopts) the writer's journal once, before the first append or checkpoint."""

    def __init__(self, writer: LedgerWriter, checkpointer: Checkpointer) -> None:
        self._writer = writer
        self._checkpointer = checkpointer

    async def __call__(self) -> WriterJournal | None:
        if self._writer.journal is None:
            self._writer.journal = await self._checkpointer.journal()
        return self._writer.journal


async def _cut(checkpointer: Checkpointer) -> None:
    # A failed cut must not stop the writer: entries keep being recorded, and the next cut
    # tries again. A refused one (a fork) is logged at CRITICAL by the checkpointer.
    try:
        await checkpointer.cut()
    except LedgerForkError:
        pass
    except Exception:
        log.exception("checkpoint failed")


async def run_standalone(settings: Settings) -> None:
    """``blo-exchange ledger-writer``: run until SIGINT/SIGTERM, then finish the batch in hand."""
    from blo_exchange.bootstrap.signals import stop_event
    from blo_exchange.bus.connection import connect
    from blo_exchange.bus.streams import ensure_streams
    from blo_exchange.db.engine import create_engine, session_factory

    stop = stop_event()
    engine = create_engine(settings.database_url.get_secret_value())
    bus = await connect(
        settings.nats_url.get_secret_value(),
        name="ledger-writer",
        credentials=settings.nats_credentials,
        nkey_seed_file=settings.nats_nkey_file,
        inbox_prefix=None if settings.nats_nkey_file is None else inbox_prefix(LEDGER_WRITER_USER),
        tls_ca_file=settings.nats_ca_file,
        timeout=settings.nats_timeout,
    )
    try:
        await ensure_streams(
            bus.js,
            duplicate_window=settings.duplicate_window,
            replicas=settings.stream_replicas,
            source_domains=source_domains(settings),
        )
        sessions = session_factory(engine)
        directory = SqlDirectory(sessions)
        trusted = signed_directory(settings, sessions, directory)
        if trusted is not None:
            await rebuild_copy(bus, trusted)
        runtime = LedgerWriterRuntime.build(
            settings,
            bus=bus,
            sessions=sessions,
            directory=directory,
            trusted=trusted,
        )
        tasks = runtime.start()
        await stop.wait()
        runtime.stop()
        await asyncio.wait(tasks, timeout=10.0)
    finally:
        await bus.close()
        await engine.dispose()
