"""Which directory a process believes: signed statements under pinned roots, or (without
``BLO_PINNED_ROOTS_FILE``) the database's directory tables as they are."""

from __future__ import annotations

from blo_exchange.config import Settings
from blo_exchange.crypto.roots import load_pinned_roots
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.statements import SignedDirectory, SqlStatementStore

__all__ = ["signed_directory"]


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
