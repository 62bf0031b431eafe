"""``make run``: the whole system on one machine, as a new user first meets it.

Starts an embedded nats-server and Postgres under DATA_DIR, migrates, seeds the demo directory
(once; later runs reuse it), then runs each demo node and the ledger writer as its own process,
exactly as ``blo-exchange serve`` and ``blo-exchange ledger-writer`` run in production. Writes
``DATA_DIR/demo-credentials.json`` [contract, DESIGN §7] and stops everything on Ctrl-C.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from blo_exchange.bootstrap.signals import stop_event
from blo_exchange.bus.connection import connect
from blo_exchange.bus.consumers import provision_bus
from blo_exchange.bus.permissions import LEDGER_WRITER_USER, NatsAuth
from blo_exchange.config import Settings
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import async_url, create_engine, migrate, session_factory
from blo_exchange.db.statements import SqlStatementStore
from blo_exchange.demo.directory import DEMO_NODES, PINNED_ROOTS_FILE, seed_demo
from blo_exchange.embedded import NatsServer, PostgresServer, free_port
from blo_exchange.errors import RuntimeServiceError

__all__ = ["CREDENTIALS_FILE", "DemoProcesses", "prepare_demo", "run_demo"]

CREDENTIALS_FILE = "demo-credentials.json"
PASSED_THROUGH = frozenset({"BLO_SUITE", "BLO_RATE_LIMIT", "BLO_RATE_BURST"})
DATABASE = "blo"


def _write_private_json(path: Path, document: dict[str, Any]) -> None:
    write_private_file(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


def _database_url(postgres: PostgresServer) -> str:
    try:
        postgres.create_database(DATABASE)
    except RuntimeServiceError as exc:
        if "already exists" not in str(exc):
            raise
    return postgres.dsn_for(DATABASE)


async def prepare_demo(
    data_dir: Path,
    nats: NatsServer,
    postgres: PostgresServer,
    *,
    base_port: int = 0,
    auth: NatsAuth | None = None,
) -> dict[str, Any]:
    """Migrate and seed (first run only); with ``auth``, create the streams and the nodes'
    consumers as the operator. Return the credentials document."""
    credentials_path = data_dir / CREDENTIALS_FILE
    database_url = _database_url(postgres)
    await migrate(database_url)
    nats_url = nats.url if auth is None else auth.operator_url(nats.url)
    if auth is not None:
        bus = await connect(nats_url, name="demo-operator")
        try:
            await provision_bus(bus, DEMO_NODES, duplicate_window=Settings().duplicate_window)
        finally:
            await bus.close()
    if credentials_path.exists():
        credentials: dict[str, Any] = json.loads(credentials_path.read_text())
        credentials["nats_url"] = nats_url
        credentials["database_url"] = database_url
        _write_private_json(credentials_path, credentials)
        return credentials
    ports = {
        node.id: (base_port + i if base_port else free_port()) for i, node in enumerate(DEMO_NODES)
    }
    urls = {node_id: f"http://127.0.0.1:{port}" for node_id, port in ports.items()}
    engine = create_engine(database_url, pool_size=2)
    try:
        sessions = session_factory(engine)
        seed = await seed_demo(
            SqlDirectory(sessions),
            data_dir / "keys",
            node_urls=urls,
            statements=SqlStatementStore(sessions),
            pinned_dirs=(data_dir / "keys" / "ledger-writer",),
        )
    finally:
        await engine.dispose()
    credentials = {
        "nodes": {
            node.id: {
                "url": urls[node.id],
                "agency": node.agency_id,
                "border_pairs": list(node.border_pairs),
                "terminal_token": seed.terminal_tokens[node.id],
                "analyst_token": seed.analyst_tokens[node.id],
            }
            for node in DEMO_NODES
        },
        "auditor_token": seed.auditor_token,
        "admin_token": seed.admin_token,
        "nats_url": nats_url,
        "database_url": database_url,
    }
    _write_private_json(credentials_path, credentials)
    return credentials


class DemoProcesses:
    """The node and ledger-writer processes of a demo, started and stopped together."""

    def __init__(
        self, data_dir: Path, credentials: dict[str, Any], *, auth: NatsAuth | None = None
    ) -> None:
        self._data_dir = data_dir
        self._credentials = credentials
        self._auth = auth
        self.processes: dict[str, subprocess.Popen[bytes]] = {}

    def _env(self, **extra: str) -> dict[str, str]:
        # Settings of the demo's own making only, except the few an operator may want to tune.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("BLO_") or k in PASSED_THROUGH
        }
        env.update(
            BLO_DATABASE_URL=async_url(self._credentials["database_url"]),
            BLO_NATS_URL=self._credentials["nats_url"],
        )
        env.update(extra)
        # Each process trusts the roots pinned in its own key directory (a demo seeded before
        # signed statements existed has none, and believes its database as before).
        pinned = Path(env.get("BLO_KEY_DIR", "")) / PINNED_ROOTS_FILE
        if "BLO_KEY_DIR" in env and pinned.is_file():
            env["BLO_PINNED_ROOTS_FILE"] = str(pinned)
        return env

    def _nats_identity(self, user: str) -> dict[str, str]:
        """With NATS permissions on, each process connects as its own nkey user, not as the
        operator whose credentials the demo's ``nats_url`` carries."""
        if self._auth is None:
            return {}
        seed = (
            self._auth.ledger_writer_seed_file
            if user == LEDGER_WRITER_USER
            else self._auth.node_seed_files[user]
        )
        return {
            "BLO_NATS_URL": _without_userinfo(self._credentials["nats_url"]),
            "BLO_NATS_NKEY_FILE": str(seed),
            "BLO_MANAGE_BUS": "false",
        }

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        logs = self._data_dir / "logs"
        logs.mkdir(exist_ok=True)
        log = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - lives as long as the process
        self.processes[name] = subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "blo_exchange", *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us only; we stop them in order
        )
        log.close()

    def start(self) -> None:
        self._spawn(
            "ledger-writer",
            ["ledger-writer"],
            self._env(
                BLO_KEY_DIR=str(self._data_dir / "keys" / "ledger-writer"),
                **self._nats_identity(LEDGER_WRITER_USER),
            ),
        )
        for node_id, node in self._credentials["nodes"].items():
            port = node["url"].rsplit(":", 1)[1]
            self._spawn(
                node_id,
                ["serve"],
                self._env(
                    BLO_NODE_ID=node_id,
                    BLO_KEY_DIR=str(self._data_dir / "keys" / node_id),
                    BLO_HTTP_PORT=port,
                    **self._nats_identity(node_id),
                ),
            )

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            for node_id, node in self._credentials["nodes"].items():
                while True:
                    process = self.processes[node_id]
                    if process.poll() is not None:
                        raise RuntimeServiceError(
                            f"node {node_id} exited; see {self._data_dir / 'logs' / node_id}.log"
                        )
                    with contextlib.suppress(httpx.HTTPError):
                        if (await client.get(node["url"] + "/readyz")).status_code == 200:
                            break
                    if time.monotonic() > deadline:
                        raise RuntimeServiceError(f"node {node_id} not ready after {timeout}s")
                    await asyncio.sleep(0.2)

    def stop(self, timeout: float = 15.0) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            try:
                process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


async def run_demo(data_dir: Path, *, simulate: bool = False, base_port: int = 0) -> None:
    started = time.monotonic()
    stop = stop_event()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o711)  # the postgres system user must traverse it when we run as root
    print(f"blo-exchange demo: data in {data_dir}", flush=True)
    with (
        NatsServer(data_dir / "nats") as nats,
        PostgresServer(data_dir / "postgres" / "data") as pg,
    ):
        credentials = await prepare_demo(data_dir, nats, pg, base_port=base_port)
        processes = DemoProcesses(data_dir, credentials)
        try:
            processes.start()
            await processes.wait_ready()
            _print_banner(data_dir, credentials, time.monotonic() - started)
            tasks = []
            if simulate:
                from blo_exchange.demo.simulator import simulate_alerts

                tasks.append(asyncio.create_task(simulate_alerts(credentials, stop)))
            await stop.wait()
            print("\nstopping…", flush=True)
            for task in tasks:
                task.cancel()
        finally:
            processes.stop()


def _without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))


def _print_banner(data_dir: Path, credentials: dict[str, Any], seconds: float) -> None:
    print(f"\nready in {seconds:.1f} s. Nodes:", flush=True)
    for node_id, node in credentials["nodes"].items():
        pairs = ",".join(node["border_pairs"])
        print(f"  {node_id:<18} {node['url']:<24} {node['agency']:<24} {pairs}")
    print(f"\nNATS      {credentials['nats_url']}")
    print(f"tokens    {data_dir / CREDENTIALS_FILE} (0600)")
    print("logs      " + str(data_dir / "logs"))
    print("\nPress Ctrl-C to stop.", flush=True)
