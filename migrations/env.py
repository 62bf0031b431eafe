"""Alembic environment: runs the static migrations over an async (asyncpg) engine.

The database URL is taken from the Alembic config's ``sqlalchemy.url`` attribute set by
``blo_exchange.db.engine.migrate`` or, for the plain ``alembic`` command, from BLO_DATABASE_URL.
"""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url") or os.environ.get("BLO_DATABASE_URL")
    if not url:
        raise SystemExit("set BLO_DATABASE_URL to the Postgres URL to migrate")
    return str(url)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=None, transaction_per_migration=True)
    with context.begin_transaction():
        context.run_migrations()


async def _run_async() -> None:
    engine = create_async_engine(_url())
    try:
        async with engine.connect() as connection:
            await connection.run_sync(_run)
            await connection.commit()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    context.configure(url=_url(), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
    else:
        asyncio.run(_run_async())
