"""Held connections on a real Postgres: the hot statements run on connections kept out of the
pool, and every way one can go wrong ends where the pool would have: the same answer, the same
error, no connection left in a bad state."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.db.engine import create_engine
from blo_exchange.db.held_connections import HeldConnections

PID = "SELECT pg_backend_pid()"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=4)
    yield engine
    await engine.dispose()


@pytest.fixture
async def held_on(engine: AsyncEngine) -> AsyncIterator[Callable[..., HeldConnections]]:
    """``held_on(size=, recycle=)``: held connections on ``engine``, all closed at the end."""
    made: list[HeldConnections] = []

    def make(**options: Any) -> HeldConnections:
        made.append(HeldConnections(engine, **options))
        return made[-1]

    yield make
    for held in made:
        await held.close()


async def test_statements_run_on_held_connections_and_answer_as_the_pool_would(
    engine: AsyncEngine, held_on: Callable[..., HeldConnections]
) -> None:
    held = held_on(size=1)
    assert await held.fetchval("SELECT $1::int + 1", (1,)) == 2
    assert await held.fetchval("SELECT 1 WHERE false", ()) is None
    assert await held.fetchval("SELECT ARRAY[1, NULL]::bigint[]", ()) == [1, None]
    first = await held.fetchval(PID, ())
    assert await held.fetchval(PID, ()) == first  # the same connection, kept
    assert _checked_out(engine) == 1
    assert held.fallbacks == 0
    await held.close()
    assert _checked_out(engine) == 0


async def test_without_an_idle_connection_a_statement_goes_through_the_pool(
    held_on: Callable[..., HeldConnections],
) -> None:
    none_held, two = held_on(size=0), held_on(size=2)
    assert await none_held.fetchval("SELECT 3", ()) == 3
    assert none_held.fallbacks == 1
    answers = await asyncio.gather(
        *(two.fetchval("SELECT $1::int FROM pg_sleep(0.05)", (n,)) for n in range(6))
    )
    assert answers == list(range(6))
    assert two.fallbacks == 4  # two ran on the held connections, the others found none idle


async def test_a_statement_error_is_the_pools_error_and_the_connection_is_kept(
    held_on: Callable[..., HeldConnections],
) -> None:
    held = held_on(size=1)
    pid = await held.fetchval(PID, ())
    with pytest.raises(DBAPIError, match="division by zero"):
        await held.fetchval("SELECT 1 / $1::int", (0,))
    assert held.fallbacks == 1  # it ran once more through the pool, which raised
    assert await held.fetchval(PID, ()) == pid


async def test_a_connection_killed_under_it_is_dropped_and_the_statement_still_runs(
    engine: AsyncEngine, held_on: Callable[..., HeldConnections]
) -> None:
    held = held_on(size=1)
    pid = await held.fetchval(PID, ())
    async with engine.connect() as other:
        await other.exec_driver_sql("SELECT pg_terminate_backend($1)", (pid,))
    assert await held.fetchval("SELECT 7", ()) == 7
    assert held.fallbacks == 1
    assert await held.fetchval(PID, ()) != pid  # a new held connection
    assert held.fallbacks == 1


async def test_a_cancelled_statement_drops_its_connection(
    engine: AsyncEngine, held_on: Callable[..., HeldConnections]
) -> None:
    held = held_on(size=1)
    pid = await held.fetchval(PID, ())
    sleeping = asyncio.create_task(held.fetchval("SELECT pg_sleep(5)", ()))
    await asyncio.sleep(0.2)
    sleeping.cancel()
    with pytest.raises(asyncio.CancelledError):
        await sleeping
    # Not "another operation is in progress": the next statement has a connection of its own.
    assert await held.fetchval(PID, ()) != pid
    assert held.fallbacks == 0
    await held.close()
    assert _checked_out(engine) == 0


async def test_an_old_held_connection_goes_back_to_the_pool(
    engine: AsyncEngine, held_on: Callable[..., HeldConnections]
) -> None:
    held = held_on(size=1, recycle=0.0)
    await held.fetchval(PID, ())
    await held.fetchval(PID, ())
    assert _checked_out(engine) == 1  # not two
    assert held.fallbacks == 0


async def test_after_close_statements_go_through_the_pool(
    engine: AsyncEngine, held_on: Callable[..., HeldConnections]
) -> None:
    held = held_on(size=2)
    await held.fetchval("SELECT 1", ())
    await held.close()
    assert _checked_out(engine) == 0
    assert await held.fetchval("SELECT 2", ()) == 2
    assert held.fallbacks == 1
    assert _checked_out(engine) == 0


def _checked_out(engine: AsyncEngine) -> int:
    return int(engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_filled_at_start_a_burst_of_as_many_statements_runs_on_them(
    engine: AsyncEngine, held_on: Callable[..., HeldConnections]
) -> None:
    held = held_on(size=2)
    assert await held.fill() == 2
    assert _checked_out(engine) == 2
    pids = await asyncio.gather(*(held.fetchval(PID, ()) for _ in range(2)))
    assert len(set(pids)) == 2  # both ran at once, each on a held connection
    assert held.fallbacks == 0
    assert await held.fill() == 2  # filled already: nothing more taken
    assert _checked_out(engine) == 2
