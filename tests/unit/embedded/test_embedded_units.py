"""What the embedded servers decide before any process starts."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from blo_exchange.embedded import NatsServer, PostgresServer, free_port
from blo_exchange.embedded.nats import nats_server_binary
from blo_exchange.errors import RuntimeServiceError


def test_free_port_can_be_bound() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_nats_config_requires_fsync_and_loopback(tmp_path: Path) -> None:
    server = NatsServer(tmp_path, port=14222, http_port=18222, extra_config="accounts {}\n")
    config = server.render_config()

    assert 'listen: "127.0.0.1:14222"' in config
    assert 'http: "127.0.0.1:18222"' in config
    assert "sync_interval: always" in config
    assert "max_payload: 8MB" in config
    assert config.endswith("accounts {}\n")
    assert server.url == "nats://127.0.0.1:14222"
    assert not server.running


def test_nats_config_quotes_paths(tmp_path: Path) -> None:
    server = NatsServer(tmp_path / 'odd "dir"', port=14222, http_port=18222)
    assert r'store_dir: "' in server.render_config()
    assert r"odd \"dir\"" in server.render_config()


def test_nats_server_binary_is_found() -> None:
    assert nats_server_binary().name == "nats-server"


def test_postgres_port_is_unknown_before_start(tmp_path: Path) -> None:
    server = PostgresServer(tmp_path / "data")
    with pytest.raises(RuntimeServiceError):
        _ = server.url


@pytest.mark.parametrize("name", ["", "1abc", 'x"; DROP DATABASE postgres; --', "a" * 64])
def test_postgres_refuses_odd_database_names(tmp_path: Path, name: str) -> None:
    server = PostgresServer(tmp_path / "data", port=5)
    with pytest.raises(RuntimeServiceError, match="database name"):
        server.create_database(name)
