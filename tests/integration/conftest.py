"""Real servers for integration tests: one Postgres per session, one nats-server per test.

Both listen on free loopback ports under the session's ``runtime_dir`` and are stopped at the end
of their scope, whatever the test did to them.
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from blo_exchange.embedded import NatsServer, PostgresServer

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_server(runtime_dir: Path) -> Iterator[PostgresServer]:
    server = PostgresServer(runtime_dir / "postgres" / "data")
    server.data_dir.parent.mkdir(mode=0o711)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database_url_libpq(postgres_server: PostgresServer) -> Iterator[str]:
    """A fresh, empty database for this test, as a libpq URL (``postgresql://...``)."""
    name = f"test_{uuid.uuid4().hex}"
    url = postgres_server.create_database(name)
    yield url
    if postgres_server.running:
        postgres_server.drop_database(name)


@pytest.fixture
def database_url(database_url_libpq: str) -> str:
    """The same database as a SQLAlchemy URL (``postgresql+asyncpg://...``)."""
    return database_url_libpq.replace("postgresql://", "postgresql+asyncpg://", 1)


@pytest.fixture
def nats_server(runtime_dir: Path) -> Iterator[NatsServer]:
    server = NatsServer(Path(tempfile.mkdtemp(prefix="nats-", dir=runtime_dir)))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def nats_url(nats_server: NatsServer) -> str:
    return nats_server.url
