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
from blo_exchange.ledger.batches import AppendBatcher
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

CHECKPOINT_SPACING = 0.25
"""Least seconds between the checkpoints that follow appends: under load one covers several
appends, so the writer cuts at most four a second (a cut is ~8 round trips and 2 fsyncs, more
CPU than an append), and an entry waits at most this long (plus one cut) for the checkpoint
the API needs to serve it (the ledger lag goal is 1 s)."""

CLOSE_TIMEOUT = 10.0
"""Seconds a stop waits for the consumers' batch in hand (and then for the last cut)."""

APPEND_LINGER = 0.05
"""Seconds a small batch (under 64 messages) waits for more before its append: an alert's entry
and its receipts then share one transaction, journal fsync and checkpoint (issue 14); under load
batches are large and append at once."""

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
    cut_wanted: asyncio.Event = field(default_factory=asyncio.Event)
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

        async def append(messages: list[InboundMessage]) -> None:
            await journal_ready()
            await writer.handle(messages)

        # The consumers' batches go into one append at a time (ledger.batches), and the
        # checkpoint task cuts one after them, at most every CHECKPOINT_SPACING s (issue 14).
        batcher: AppendBatcher[InboundMessage] = AppendBatcher(append, linger=APPEND_LINGER)
        cut_wanted = asyncio.Event()

        async def handle(batch: Sequence[BusMessage]) -> None:
            await batcher.submit([InboundMessage(m.subject, m.data, m.stream_seq) for m in batch])
            # Acked only after the commit above: a crash before this line means redelivery,
            # which the event-id check turns into a no-op.
            for message in batch:
                await message.ack()
            cut_wanted.set()

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
            cut_wanted=cut_wanted,
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

    async def close(self, timeout: float = 2 * CLOSE_TIMEOUT) -> None:
        """Stop, and wait until the batch in hand is committed and acked (or ``timeout``)."""
        self.stop()
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=timeout)

    async def register_key(self) -> None:
        """Without pinned roots, publish the ledger key as a directory row (a no-op when it is
        there already). With them, only say whether a ``ledger_key`` statement signed by every
        agency grants it: nobody believes its checkpoints until one does."""
        if self.trusted is not None:
            keys = await self.trusted.verify_keys("ledger", self.origin, utc_now())
            if self.key_id not in keys:
                log.error(
                    "the ledger key %s is not granted by a ledger_key statement signed by every "
                    "agency's root: nodes, witnesses and auditors refuse its checkpoints until "
                    "one is published (docs/administering-trust.md)",
                    self.key_id,
                )
            return
        await self.directory.add_key(
            key_id=self.key_id,
            owner_kind="ledger",
            owner_id=self.origin,
            alg="Ed25519",
            public=self.public_key,
        )

    async def _checkpoints(self, stopping: asyncio.Event) -> None:
        """A cut soon after appends (``cut_wanted``), at most every CHECKPOINT_SPACING s, and
        one every CHECKPOINT_INTERVAL s anyway; on stop, a last one once the consumers have
        committed the batch in hand (so the state file holds no batch still pending)."""
        try:
            await self.register_key()
        except Exception:
            log.exception("could not register the ledger key in the directory")
        loop = asyncio.get_running_loop()
        while not stopping.is_set():
            self.cut_wanted.clear()
            started = loop.time()
            await self._cut_now()
            await _first(stopping, self.cut_wanted, timeout=CHECKPOINT_INTERVAL)
            if not stopping.is_set():
                spacing = started + CHECKPOINT_SPACING - loop.time()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stopping.wait(), max(0.0, spacing))
        consumers = [t for t in self._tasks if t.get_name().startswith("ledger-writer-")]
        if consumers:
            await asyncio.wait(consumers, timeout=CLOSE_TIMEOUT)
        await self._cut_now()

    async def _cut_now(self) -> None:
        try:
            await self.journal_ready()
        except Exception:
            log.exception("could not read the ledger writer's state")
        else:
            await _cut(self.checkpointer)

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


async def _first(*events: asyncio.Event, timeout: float) -> None:
    """Wait until one of ``events`` is set, or ``timeout``."""
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


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
        runtime.start()
        await stop.wait()
        await runtime.close()
    finally:
        await bus.close()
        await engine.dispose()
