"""Connecting to Postgres and bringing its schema up to date.

Engines are built by the caller (the app's lifespan, a CLI command), never at import time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import asyncpg
from sqlalchemy import event
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.util import await_only

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = [
    "DATABASE_ERRORS",
    "SessionFactory",
    "async_url",
    "create_engine",
    "database_unavailable",
    "engine_of",
    "in_transaction",
    "migrate",
    "open_ahead",
    "read_sessions",
    "session_factory",
]

T = TypeVar("T")

log = logging.getLogger(__name__)

SessionFactory = async_sessionmaker[AsyncSession]

_REPO_ROOT = Path(__file__).resolve().parents[3]


def async_url(url: str) -> str:
    """Accept a plain libpq URL too: ``postgresql://…`` becomes ``postgresql+asyncpg://…``."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


CONNECT_TIMEOUT = 5.0
"""Seconds to open a connection: an unreachable Postgres fails a request with a 503 in this
time instead of holding it (and the client) for asyncpg's default minute."""

POOL_TIMEOUT = 5.0
"""Seconds a request waits for a pooled connection before it is answered 503."""

CONNECTING_AT_ONCE = 2
"""New connections opened at the same time. Each costs a SCRAM key derivation (4096 rounds of
PBKDF2, milliseconds of CPU on the event loop's thread); when Postgres comes back after an outage
every waiting request connects at once, and unthrottled that stalled the loop for a fifth of a
second, /readyz included."""

DATABASE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)
"""What a statement may raise; :func:`database_unavailable` tells outages from mistakes."""

# SQLSTATE classes that say the server can't serve now, not that the statement was wrong:
# 08 connection exception, 53 insufficient resources (too many connections, disk full),
# 57 operator intervention (shutting down, starting up, crash recovery).
_UNAVAILABLE_SQLSTATE = ("08", "53", "57")


def database_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or what it wraps) says Postgres is down, restarting, out of
    connections or too slow; False for an error in the statement or the data."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, PoolTimeout | OSError | asyncpg.PostgresConnectionError):
            return True
        if isinstance(current, asyncpg.InterfaceError):  # the connection was closed under it
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        sqlstate = getattr(current, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _UNAVAILABLE_SQLSTATE:
            return True
        orig = getattr(current, "orig", None)
        todo += [current.__cause__, current.__context__]
        if isinstance(orig, BaseException):
            todo.append(orig)
    return False


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    """A pool of at most ``2 * pool_size`` connections, each kept once opened, and no
    ``pre_ping``: a ping is one more round trip per checkout, on every request.

    Kept, not overflow: SQLAlchemy closes an overflow connection when it is given back to a full
    pool, so under more than ``pool_size`` concurrent requests every checkout opened a connection
    (TCP, a SCRAM key derivation, the session's start) and closed it after one statement: about
    twenty a second on the origin node in the accept bench, each milliseconds of CPU, queued
    :data:`CONNECTING_AT_ONCE` at a time behind the request that needed it (issue 14). The most
    connections an engine opens is what it was (``pool_size`` plus as many overflow).

    Without a ping, dead connections (Postgres restarted) are handled so: the first statement
    on one fails, SQLAlchemy invalidates the whole pool's older connections, and
    :func:`in_transaction` runs the work once more on a fresh one. ``pool_recycle`` retires
    connections before a server or proxy idle timeout would cut them. Connecting and waiting for
    the pool are bounded (:data:`CONNECT_TIMEOUT`, :data:`POOL_TIMEOUT`), so an outage fails
    fast.
    """
    engine = create_async_engine(
        async_url(url),
        pool_size=2 * pool_size,
        max_overflow=0,
        pool_pre_ping=False,
        pool_recycle=1800,
        pool_timeout=POOL_TIMEOUT,
        connect_args={"timeout": CONNECT_TIMEOUT},
    )
    connecting = asyncio.Semaphore(CONNECTING_AT_ONCE)

    @event.listens_for(engine.sync_engine, "do_connect")
    def _one_at_a_time(
        dialect: Dialect, record: ConnectionPoolEntry, cargs: Any, cparams: Any
    ) -> Any:
        # Runs in SQLAlchemy's greenlet, inside the event loop: await_only may wait there.
        await_only(connecting.acquire())
        try:
            return dialect.connect(*cargs, **cparams)
        finally:
            connecting.release()

    return engine


async def open_ahead(engine: AsyncEngine, count: int) -> int:
    """Open ``count`` connections of ``engine``'s pool now and leave them in it; how many opened.

    A node's pool otherwise grows under its first burst: every request past the idle
    connections waits while new ones open, :data:`CONNECTING_AT_ONCE` at a time, each a SCRAM
    derivation on a loaded machine (the bench's first burst after a start opened ten to
    seventeen; bench/README.md, stop 25). Opened here, that cost is paid before the node says it
    is ready; the slow 202s of a cold start had another cause as well (stop 26). A connection
    that fails to open is left to the pool to open when needed, as before: a database that is
    slow or away at start is the readiness check's business, not this one's.
    """
    taken: list[AsyncConnection] = []

    async def one() -> None:
        taken.append(await engine.connect())

    try:
        outcomes = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    finally:
        for conn in taken:
            await conn.close()  # back to the pool, which keeps it (see create_engine)
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    for outcome in failed:
        if not isinstance(outcome, DATABASE_ERRORS):
            raise outcome
    if failed:  # one line, not one per connection, when the database is away
        log.warning(
            "could not open %d of %d database connections ahead: %s",
            len(failed),
            count,
            type(failed[0]).__name__,
        )
    return len(taken)


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def read_sessions(sessions: SessionFactory) -> SessionFactory:
    """Sessions for reads, in autocommit: no BEGIN and ROLLBACK around each query, which are two
    of a read's three round trips (issue 14). Under READ COMMITTED each statement has its own
    snapshot even inside a transaction, so a read sees nothing different."""
    engine = autocommit(engine_of(sessions))
    return async_sessionmaker(engine, expire_on_commit=False)


def column_arrays(rows: Sequence[object], *names: str) -> tuple[list[Any], ...]:
    """One list per named attribute of ``rows``: the parameters of an ``unnest($1::t[], ...)``
    insert, one fixed statement whatever the row count."""
    return tuple([getattr(row, name) for row in rows] for name in names)


def engine_of(sessions: SessionFactory) -> AsyncEngine:
    """The engine a session factory is bound to, for Core statements on the hot paths."""
    engine = sessions.kw.get("bind")
    if not isinstance(engine, AsyncEngine):
        raise TypeError("the session factory is not bound to an AsyncEngine")
    return engine


async def in_transaction(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` in one transaction; once more if the pooled connection turned out dead.

    ``work`` must be safe to run twice (an insert that skips conflicts, an update to fixed
    values): a connection lost during COMMIT leaves it unknown whether the first run committed.
    """
    return await _once_more_if_dead(engine.begin, work)


def autocommit(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` with each statement its own transaction: one statement, or one call of a
    function that runs several, needs no BEGIN and COMMIT, which are two more round trips."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


async def in_autocommit(engine: AsyncEngine, work: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    """Run ``work`` on a connection of an :func:`autocommit` engine; once more if the pooled
    connection turned out dead. As for :func:`in_transaction`, ``work`` must be safe to run
    twice: a connection lost before the answer leaves it unknown whether the first run
    committed."""
    return await _once_more_if_dead(engine.connect, work)


async def _once_more_if_dead(
    connect: Callable[[], AbstractAsyncContextManager[AsyncConnection]],
    work: Callable[[AsyncConnection], Awaitable[T]],
) -> T:
    try:
        async with connect() as conn:
            return await work(conn)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    async with connect() as conn:
        return await work(conn)


def _alembic_config(url: str) -> Config:
    from alembic.config import Config

    ini = _REPO_ROOT / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", str(_REPO_ROOT / "migrations"))
    config.attributes["database_url"] = async_url(url)
    return config


def _upgrade(url: str) -> None:
    # Imported here: a serving process never migrates, and alembic (with mako and pygments)
    # is 8 MB of its memory for life (issue 14).
    from alembic import command

    command.upgrade(_alembic_config(url), "head")


async def migrate(url: str) -> None:
    """Run every pending migration. Alembic's env runs its own event loop, so use a thread."""
    await asyncio.to_thread(_upgrade, url)
