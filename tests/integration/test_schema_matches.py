"""The SQLAlchemy mappings match what the migrations create (feed tables, receipt outbox)."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection

from blo_exchange.db import pending_receipts  # noqa: F401 - maps its table onto Base
from blo_exchange.db.engine import create_engine, migrate
from blo_exchange.db.tables import Base

CHECKED = {"node_inbox", "node_feed_heads", "pending_receipts"}


def _differences(conn: Connection) -> list[Any]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return compare_metadata(context, Base.metadata)


def _table_of(diff: Any) -> str | None:
    item = diff[0] if isinstance(diff, list) else diff
    for part in item[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if isinstance(part, str) and part in CHECKED:
            return part
        if name in CHECKED:
            return str(name)
    return None


async def test_feed_tables_match_the_migrations(database_url: str) -> None:
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(_differences)
    finally:
        await engine.dispose()
    assert [d for d in diffs if _table_of(d) in CHECKED] == []
