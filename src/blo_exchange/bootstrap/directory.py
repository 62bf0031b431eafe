"""Which directory a process believes: signed statements under pinned roots, or (without
``BLO_PINNED_ROOTS_FILE``) the database's directory tables as they are; and the consumer that
copies the directory stream's statements, verified, into the process's own database."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import BusMessage, PullConsumer
from blo_exchange.bus.consumers import directory_consumer_spec
from blo_exchange.config import Settings
from blo_exchange.crypto.roots import load_pinned_roots
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.statements import SignedDirectory, SqlStatementStore

__all__ = ["directory_copier", "signed_directory"]


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
