"""The demo's node and ledger-writer processes: each started as production starts it
(``python -m blo_exchange serve`` / ``ledger-writer``), with settings of the demo's making only.

Each process gets its own credentials: a node its agency's database and the ledger's under its
agency's witness role, the ledger writer the ledger's database as its owner (never the
superuser's), and with NATS permissions on, its own nkey user.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import ssl
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from blo_exchange.bus.permissions import LEDGER_WRITER_USER, NatsAuth
from blo_exchange.db.engine import async_url
from blo_exchange.db.provision import LEDGER
from blo_exchange.demo.directory import PINNED_ROOTS_FILE
from blo_exchange.errors import RuntimeServiceError

__all__ = ["PASSED_THROUGH", "DemoProcesses", "client_tls", "without_userinfo"]

PASSED_THROUGH = frozenset({"BLO_SUITE", "BLO_RATE_LIMIT", "BLO_RATE_BURST"})


def client_tls(credentials: dict[str, Any]) -> ssl.SSLContext | bool:
    """What an httpx client of the demo's nodes verifies them with: the demo CA, if it has one."""
    ca_file = credentials.get("ca_file")
    return True if ca_file is None else ssl.create_default_context(cafile=ca_file)


class DemoProcesses:
    """The node and ledger-writer processes of a demo, started and stopped together."""

    def __init__(
        self, data_dir: Path, credentials: dict[str, Any], *, auth: NatsAuth | None = None
    ) -> None:
        self._data_dir = data_dir
        self._credentials = credentials
        self._auth = auth
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._commands: dict[str, tuple[list[str], dict[str, str]]] = {}

    def _env(self, **extra: str) -> dict[str, str]:
        # Settings of the demo's own making only, except the few an operator may want to tune.
        env = {
            k: v for k, v in os.environ.items() if not k.startswith("BLO_") or k in PASSED_THROUGH
        }
        env.update(BLO_NATS_URL=self._credentials["nats_url"], **self._databases(extra))
        if "tls_dir" not in self._credentials:  # the fault and bench harnesses' plain HTTP
            env["BLO_ALLOW_PLAIN_HTTP"] = "true"
        env.update(extra)
        # Each process trusts the roots pinned in its own key directory (a demo seeded before
        # signed statements existed has none, and believes its database as before).
        pinned = Path(env.get("BLO_KEY_DIR", "")) / PINNED_ROOTS_FILE
        if "BLO_KEY_DIR" in env and pinned.is_file():
            env["BLO_PINNED_ROOTS_FILE"] = str(pinned)
        return env

    def _databases(self, extra: dict[str, str]) -> dict[str, str]:
        """A node's own agency's database, and the ledger's under its agency's witness role;
        the ledger writer's, the ledger's as its owner. Never the superuser's."""
        databases = self._credentials["databases"]
        node_id = extra.get("BLO_NODE_ID")
        if node_id is None:
            return {"BLO_DATABASE_URL": async_url(databases[LEDGER])}
        agency = self._credentials["nodes"][node_id]["agency"]
        return {
            "BLO_DATABASE_URL": async_url(databases[agency]),
            "BLO_LEDGER_DATABASE_URL": async_url(
                self._credentials["ledger_witness_databases"][agency]
            ),
        }

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
        identity = {
            "BLO_NATS_URL": without_userinfo(self._credentials["nats_url"]),
            "BLO_NATS_NKEY_FILE": str(seed),
            "BLO_MANAGE_BUS": "false",
        }
        if "ca_file" in self._credentials:  # the demo's NATS speaks TLS, from the same CA
            identity["BLO_NATS_CA_FILE"] = self._credentials["ca_file"]
        return identity

    def _spawn(self, name: str, args: list[str], env: dict[str, str]) -> None:
        self._commands[name] = (args, env)
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
                    **self._tls(node_id),
                    **self._nats_identity(node_id),
                ),
            )

    def respawn(self, name: str) -> None:
        """Start ``name`` again as it was started first (its old process must have exited)."""
        args, env = self._commands[name]
        self._spawn(name, args, env)

    def _tls(self, node_id: str) -> dict[str, str]:
        tls_dir = self._credentials.get("tls_dir")
        if tls_dir is None:
            return {}
        files = {
            "BLO_TLS_CERT_FILE": str(Path(tls_dir) / f"{node_id}.pem"),
            "BLO_TLS_KEY_FILE": str(Path(tls_dir) / f"{node_id}.key"),
        }
        client_ca = self._credentials["nodes"][node_id].get("client_ca_file")
        return files if client_ca is None else files | {"BLO_CLIENT_CA_FILE": client_ca}

    async def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0, verify=client_tls(self._credentials)) as client:
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


def without_userinfo(url: str) -> str:
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=netloc))
