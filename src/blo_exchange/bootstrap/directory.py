"""Which directory a process believes: signed statements under pinned roots, or (without
``BLO_PINNED_ROOTS_FILE``) the database's directory tables as they are; the consumer that
copies the directory stream's statements, verified, into the process's own database; and the
rebuild of that copy from the stream when the process starts.

The stream is the source (no delete or purge) and the database a cache: a statement deleted from
the copy by whoever administers the database (a revocation, say) comes back at the next start."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import BusMessage, PullConsumer
from blo_exchange.bus.consumers import directory_consumer_spec
from blo_exchange.bus.streams import DIRECTORY_STREAM, stream_messages
from blo_exchange.config import Settings
from blo_exchange.crypto.roots import load_pinned_roots
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.statements import SignedDirectory, SqlStatementStore

__all__ = ["directory_copier", "rebuild_copy", "signed_directory"]

log = logging.getLogger(__name__)


def signed_directory(
    settings: Settings, sessions: SessionFactory, principals: SqlDirectory
) -> SignedDirectory | None:
    """The signed directory when roots are pinned; ``ConfigurationError`` for an unusable file."""
    if settings.pinned_roots_file is None:
        return None
    return SignedDirectory(
        SqlStatementStore(sessions),
        load_pinned_roots(settings.pinned_roots_file),
        principals=principals,
    )


def directory_copier(
    bus: BusConnection, trusted: SignedDirectory, *, durable: str, create: bool
) -> PullConsumer:
    """The consumer that keeps this process's verified copy of the directory stream."""

    async def handle(batch: Sequence[BusMessage]) -> None:
        for message in batch:
            await trusted.accept(message.data)
            await message.ack()

    spec = dataclasses.replace(directory_consumer_spec(durable), create=create)
    return PullConsumer(bus, spec, handler=handle)


async def rebuild_copy(bus: BusConnection, trusted: SignedDirectory) -> int:
    """At start: (1) read every statement on the directory stream, first to last; (2) accept
    each as the copier does (verified against this process's pinned roots; kept if these exact
    bytes are missing from the copy); return how many were missing. Not checked: statements in
    the copy that are not on the stream (published ``--to database``) stay. If the stream
    cannot be read (a leaf site whose link is down), the copy is used as it is, with a warning:
    the copier adds what it missed once the stream is back, but a statement deleted from the
    copy is then only restored at the next start that reads the stream."""
    try:
        raws = await stream_messages(bus.js, DIRECTORY_STREAM)
    except Exception as exc:  # any failure to read: start from the copy
        log.warning(
            "could not read the directory stream; using the database's copy as it is",
            extra={"reason": repr(exc)},
        )
        return 0
    restored = 0
    for raw in raws:
        if await trusted.accept(raw) == "stored":
            restored += 1
    if restored:
        log.warning(
            "the directory copy lacked statements the stream holds; restored them",
            extra={"restored": restored},
        )
    return restored
