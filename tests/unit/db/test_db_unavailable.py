"""Which database errors are outages (a 503 and a retry) and which are mistakes (a 500)."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from blo_exchange.db.engine import database_unavailable


class _DriverError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


def wrapped(orig: BaseException, cls: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return cls("SELECT 1", None, orig)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        TimeoutError(),
        PoolTimeout("QueuePool limit reached"),
        asyncpg.exceptions.ConnectionDoesNotExistError("closed in the middle"),
        asyncpg.exceptions.CannotConnectNowError("the database system is starting up"),
        asyncpg.InterfaceError("connection is closed"),
        wrapped(_DriverError("57P01")),  # admin shutdown
        wrapped(_DriverError("57P03")),  # cannot connect now
        wrapped(_DriverError("53300")),  # too many connections
        wrapped(_DriverError("08006")),  # connection failure
        wrapped(OSError("Connect call failed"), OperationalError),
    ],
)
def test_outages(exc: BaseException) -> None:
    assert database_unavailable(exc)


def test_an_outage_behind_another_error_is_found() -> None:
    def read() -> None:
        try:
            raise ConnectionResetError("reset by peer")
        except ConnectionResetError as inner:
            raise RuntimeError("while reading") from inner

    with pytest.raises(RuntimeError) as caught:
        read()
    assert database_unavailable(caught.value)


@pytest.mark.parametrize(
    "exc",
    [
        wrapped(_DriverError("23505"), IntegrityError),  # unique violation
        wrapped(_DriverError("42P01"), ProgrammingError),  # no such table
        ValueError("bad"),
    ],
)
def test_mistakes(exc: BaseException) -> None:
    assert not database_unavailable(exc)
