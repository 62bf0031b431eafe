"""The engine's pool on a real Postgres: connections opened under a burst are kept for the next
one, not closed after one statement each (issue 14)."""

from __future__ import annotations

import asyncio

from sqlalchemy import event

from blo_exchange.db.engine import create_engine, open_ahead


async def test_connections_opened_under_a_burst_are_kept(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=2)  # at most four
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    async def statement() -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT pg_sleep(0.05)")

    try:
        for _ in range(3):  # three bursts of four: the first opens four, the others none
            await asyncio.gather(*(statement() for _ in range(4)))
        assert opened == 4
        assert engine.pool.checkedin() == 4  # type: ignore[attr-defined]
    finally:
        await engine.dispose()


async def test_connections_opened_ahead_serve_the_first_burst(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=2)  # at most four
    opened = 0

    @event.listens_for(engine.sync_engine, "connect")
    def count(*_: object) -> None:
        nonlocal opened
        opened += 1

    async def statement() -> None:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT pg_sleep(0.05)")

    try:
        assert await open_ahead(engine, 3) == 3
        assert opened == 3
        assert engine.pool.checkedin() == 3  # type: ignore[attr-defined]
        await asyncio.gather(*(statement() for _ in range(3)))  # a burst: no connection opened
        assert opened == 3
    finally:
        await engine.dispose()


async def test_opening_ahead_against_an_unreachable_database_opens_none() -> None:
    # A node starting while its database is away: nothing opened, nothing raised here (the
    # readiness check says so); the pool opens connections when the database is back.
    engine = create_engine("postgresql://nobody:x@127.0.0.1:9/nowhere", pool_size=2)
    try:
        assert await open_ahead(engine, 2) == 0
    finally:
        await engine.dispose()
