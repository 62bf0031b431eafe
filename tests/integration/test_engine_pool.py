"""The engine's pool on a real Postgres: connections opened under a burst are kept for the next
one, not closed after one statement each; and connections opened ahead serve the first burst
(issue 14)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.db.engine import create_engine, open_ahead


@dataclass
class Counted:
    engine: AsyncEngine
    opened: int = 0

    async def burst(self, size: int) -> None:
        async def statement() -> None:
            async with self.engine.connect() as conn:
                await conn.exec_driver_sql("SELECT pg_sleep(0.05)")

        await asyncio.gather(*(statement() for _ in range(size)))


@pytest.fixture
async def counted(database_url: str) -> AsyncIterator[Counted]:
    """An engine of at most four connections, counting those it opens."""
    counted = Counted(create_engine(database_url, pool_size=2))

    @event.listens_for(counted.engine.sync_engine, "connect")
    def count(*_: object) -> None:
        counted.opened += 1

    yield counted
    await counted.engine.dispose()


async def test_connections_opened_under_a_burst_are_kept(counted: Counted) -> None:
    for _ in range(3):  # three bursts of four: the first opens four, the others none
        await counted.burst(4)
    assert counted.opened == 4
    assert counted.engine.pool.checkedin() == 4  # type: ignore[attr-defined]


async def test_connections_opened_ahead_serve_the_first_burst(counted: Counted) -> None:
    assert await open_ahead(counted.engine, 3) == 3
    assert counted.opened == 3
    assert counted.engine.pool.checkedin() == 3  # type: ignore[attr-defined]
    await counted.burst(3)  # no connection opened for it
    assert counted.opened == 3


async def test_opening_ahead_against_an_unreachable_database_opens_none() -> None:
    # A node starting while its database is away: nothing opened, nothing raised here (the
    # readiness check says so); the pool opens connections when the database is back.
    engine = create_engine("postgresql://nobody:x@127.0.0.1:9/nowhere", pool_size=2)
    try:
        assert await open_ahead(engine, 2) == 0
    finally:
        await engine.dispose()
