"""A few connections held out of the pool for the statements every accept and every delivered
batch runs, each of them one statement in autocommit.

Through SQLAlchemy a statement costs about 250 µs of the event loop's CPU, where asyncpg alone
takes 60: the pool's checkout and checkin (greenlets, events, the reset) are half of it and the
Core execution context most of the rest (issue 14; bench/README.md, "stop 25"). On the origin
node an accept runs two such statements, and they were about a fifth of its loop.

So a :class:`HeldConnections` keeps up to ``size`` connections checked out of the engine's own
pool (same credentials, same codecs) and runs a statement on the asyncpg connection under one
that is idle. Everything else is what the pool gives:

- none idle (a burst): the statement goes through the pool, as before;
- any error on a held connection: the statement runs once more through the pool, so callers
  meet the errors they always did (a statement in autocommit that failed committed nothing; one
  whose connection broke mid-way must be safe to run twice, as for ``engine.in_autocommit``).
  Only a connection whose statement the server refused is kept; any other is dropped;
- a cancelled statement drops its connection: asyncpg may still be reading its answer;
- a held connection older than ``recycle`` seconds goes back to the pool, before the pool's own
  ``pool_recycle`` would have retired it;
- :meth:`close` gives every held connection back; the owner calls it before disposing of the
  engine.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from blo_exchange.db.engine import DATABASE_ERRORS, autocommit, database_unavailable, in_autocommit

__all__ = ["HELD", "RECYCLE_SECONDS", "HeldConnections"]

log = logging.getLogger(__name__)

HELD = 4
"""Connections one process holds. An accept's two statements, or a delivered batch's one, take
well under a millisecond, but a node answering 32 posts at once found both of two busy for about
one statement in seven (a py-spy profile of the accept bench, stop 27: ``through_the_pool`` 4% of
the loop against ``fetchval`` 6%, at ~250 and ~60 µs a statement). Four of the node's 20."""

RECYCLE_SECONDS = 600.0
"""Age at which a held connection goes back to the pool (whose own recycle is 1800 s)."""


@dataclass
class _Held:
    conn: AsyncConnection
    raw: asyncpg.Connection
    since: float


class HeldConnections:
    def __init__(
        self, engine: AsyncEngine, *, size: int = HELD, recycle: float = RECYCLE_SECONDS
    ) -> None:
        self._autocommit = autocommit(engine)
        self._size = size
        self._recycle = recycle
        self._idle: list[_Held] = []
        self._count = 0  # held now: idle or running a statement
        self._closed = False
        self._dropping: set[asyncio.Task[None]] = set()
        self.fallbacks = 0
        """Statements that went through the pool instead (none idle, or an error)."""

    async def fetchval(self, sql: str, params: Sequence[Any]) -> Any:
        """The first column of the first row of ``sql`` (``$1``-style parameters), or None."""
        held = await self._take()
        if held is not None:
            try:
                value = await held.raw.fetchval(sql, *params)
            except Exception as exc:
                # The server refused the statement: the connection is as good as before. Anything
                # else (the connection closed or killed, asyncpg's own state, a timeout) may have
                # left it unusable ("another operation is in progress"): dropped.
                if isinstance(exc, asyncpg.PostgresError) and not database_unavailable(exc):
                    self._give_back(held)
                else:
                    self._drop(held)
                log.debug("held connection failed (%s); once more through the pool", exc)
            except BaseException:
                self._drop(held)  # cancelled mid-statement: its answer may still be coming
                raise
            else:
                self._give_back(held)
                return value
        self.fallbacks += 1

        async def through_the_pool(conn: AsyncConnection) -> Any:
            return (await conn.exec_driver_sql(sql, tuple(params))).scalar()

        return await in_autocommit(self._autocommit, through_the_pool)

    async def fill(self) -> int:
        """Take the connections to hold now (the pool's idle ones first), so the first
        statements find them; how many are held."""
        taken: list[_Held] = []
        try:
            while self._count < self._size and not self._closed:
                held = await self._take()
                if held is None:
                    break  # the database refused: statements go through the pool meanwhile
                taken.append(held)
        finally:
            for held in taken:
                self._give_back(held)
        return self._count

    async def close(self) -> None:
        """Every held connection back to the pool; statements after this go through the pool."""
        self._closed = True
        idle, self._idle = self._idle, []
        for held in idle:
            self._count -= 1
            await held.conn.close()
        if self._dropping:
            await asyncio.gather(*self._dropping, return_exceptions=True)

    async def _take(self) -> _Held | None:
        while self._idle:
            held = self._idle.pop()
            if time.monotonic() - held.since < self._recycle:
                return held
            self._count -= 1
            await held.conn.close()
        if self._closed or self._count >= self._size:
            return None
        self._count += 1
        try:
            conn = await self._autocommit.connect()
            try:
                raw = (await conn.get_raw_connection()).driver_connection
            except BaseException:
                await conn.close()
                raise
        except DATABASE_ERRORS:
            self._count -= 1
            return None  # through the pool, which raises what callers know
        except BaseException:
            self._count -= 1
            raise
        if not isinstance(raw, asyncpg.Connection):
            await conn.close()
            self._count -= 1
            raise TypeError("held connections need the asyncpg driver")
        return _Held(conn, raw, time.monotonic())

    def _give_back(self, held: _Held) -> None:
        if self._closed:
            self._drop(held)
        else:
            self._idle.append(held)

    def _drop(self, held: _Held) -> None:
        """Close ``held`` for good (the pool forgets it) without making the caller wait."""
        self._count -= 1

        async def drop() -> None:
            try:
                await held.conn.invalidate()
            finally:
                await held.conn.close()

        task = asyncio.ensure_future(drop())
        self._dropping.add(task)
        task.add_done_callback(self._dropped)

    def _dropped(self, task: asyncio.Task[None]) -> None:
        self._dropping.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("dropping a held connection failed: %s", task.exception())
