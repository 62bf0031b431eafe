"""Held connections on a real Postgres: the hot statements run on connections kept out of the
pool, and every way one can go wrong ends where the pool would have: the same answer, the same
error, no connection left in a bad state."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.exc import DBAPIError

from blo_exchange.db.engine import create_engine
from blo_exchange.db.held_connections import HeldConnections

PID = "SELECT pg_backend_pid()"


async def test_statements_run_on_held_connections_and_answer_as_the_pool_would(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=4)
    held = HeldConnections(engine, size=1)
    try:
        assert await held.fetchval("SELECT $1::int + 1", (1,)) == 2
        assert await held.fetchval("SELECT 1 WHERE false", ()) is None
        assert await held.fetchval("SELECT ARRAY[1, NULL]::bigint[]", ()) == [1, None]
        first = await held.fetchval(PID, ())
        assert await held.fetchval(PID, ()) == first  # the same connection, kept
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        assert held.fallbacks == 0
    finally:
        await held.close()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        await engine.dispose()


async def test_without_an_idle_connection_a_statement_goes_through_the_pool(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=4)
    none_held = HeldConnections(engine, size=0)
    two = HeldConnections(engine, size=2)
    try:
        assert await none_held.fetchval("SELECT 3", ()) == 3
        assert none_held.fallbacks == 1
        answers = await asyncio.gather(
            *(two.fetchval("SELECT $1::int FROM pg_sleep(0.05)", (n,)) for n in range(6))
        )
        assert answers == list(range(6))
        assert two.fallbacks == 4  # two ran on the held connections, the others waited for none
    finally:
        await two.close()
        await engine.dispose()


async def test_a_statement_error_is_the_pools_error_and_the_connection_is_kept(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=4)
    held = HeldConnections(engine, size=1)
    try:
        pid = await held.fetchval(PID, ())
        with pytest.raises(DBAPIError, match="division by zero"):
            await held.fetchval("SELECT 1 / $1::int", (0,))
        assert held.fallbacks == 1  # it ran once more through the pool, which raised
        assert await held.fetchval(PID, ()) == pid
    finally:
        await held.close()
        await engine.dispose()


async def test_a_connection_killed_under_it_is_dropped_and_the_statement_still_runs(
    database_url: str,
) -> None:
    engine = create_engine(database_url, pool_size=4)
    held = HeldConnections(engine, size=1)
    try:
        pid = await held.fetchval(PID, ())
        async with engine.connect() as other:
            await other.exec_driver_sql("SELECT pg_terminate_backend($1)", (pid,))
        assert await held.fetchval("SELECT 7", ()) == 7
        assert held.fallbacks == 1
        again = await held.fetchval(PID, ())
        assert again != pid  # a new held connection
        assert held.fallbacks == 1
    finally:
        await held.close()
        await engine.dispose()


async def test_a_cancelled_statement_drops_its_connection(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=4)
    held = HeldConnections(engine, size=1)
    try:
        pid = await held.fetchval(PID, ())
        sleeping = asyncio.create_task(held.fetchval("SELECT pg_sleep(5)", ()))
        await asyncio.sleep(0.2)
        sleeping.cancel()
        with pytest.raises(asyncio.CancelledError):
            await sleeping
        # Not "another operation is in progress": the next statement has a connection of its own.
        assert await held.fetchval(PID, ()) != pid
        assert held.fallbacks == 0
    finally:
        await held.close()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        await engine.dispose()


async def test_an_old_held_connection_goes_back_to_the_pool(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=4)
    held = HeldConnections(engine, size=1, recycle=0.0)
    try:
        await held.fetchval(PID, ())
        await held.fetchval(PID, ())
        assert engine.pool.checkedout() == 1  # type: ignore[attr-defined]  # not two
        assert held.fallbacks == 0
    finally:
        await held.close()
        await engine.dispose()


async def test_after_close_statements_go_through_the_pool(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=4)
    held = HeldConnections(engine, size=2)
    try:
        await held.fetchval("SELECT 1", ())
        await held.close()
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        assert await held.fetchval("SELECT 2", ()) == 2
        assert held.fallbacks == 1
        assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    finally:
        await engine.dispose()
