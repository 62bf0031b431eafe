"""``make run``: the whole system on one machine, as a new user first meets it.

Starts an embedded nats-server and Postgres under DATA_DIR, creates a database and a login role
for each agency and one for the ledger (:mod:`.databases`: the superuser is used for that only),
migrates and seeds them (once; later runs reuse them), then runs each demo node and the ledger
writer as its own process, each under its own role, exactly as ``blo-exchange serve`` and
``blo-exchange ledger-writer`` run in production. Writes
``DATA_DIR/demo-credentials.json`` [contract, docs/contracts/README.md] and stops everything on
Ctrl-C.

While it runs it looks after its children (:func:`supervise`): one that exits — a crash, a
``kill -9`` — is reaped at once, logged, and started again after a backoff that grows while it
keeps failing. Not for production, where a service manager (systemd, Kubernetes) does this.

The nodes serve HTTPS with certificates from a demo CA made under ``DATA_DIR/tls`` (its
``ca.pem`` is in the credentials as ``ca_file``); NATS runs with per-process nkey users.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blo_exchange.bootstrap.signals import stop_event
from blo_exchange.bus.connection import connect
from blo_exchange.bus.consumers import provision_bus
from blo_exchange.bus.permissions import NatsAuth, prepare_nats_auth
from blo_exchange.config import Settings
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.crypto.tls import demo_pki
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.provision import LEDGER
from blo_exchange.db.statements import SqlStatementStore
from blo_exchange.demo.databases import demo_databases
from blo_exchange.demo.devices import DEVICE_NODE, with_device_terminal
from blo_exchange.demo.directory import DEMO_NODES, make_demo_seed, store_seed
from blo_exchange.demo.processes import DemoProcesses, without_userinfo
from blo_exchange.embedded import NatsServer, PostgresServer, free_port
from blo_exchange.errors import RuntimeServiceError

__all__ = [
    "CREDENTIALS_FILE",
    "demo_nats",
    "prepare_demo",
    "run_demo",
    "supervise",
]

CREDENTIALS_FILE = "demo-credentials.json"
BACKOFF = (0.5, 1.0, 2.0, 4.0, 8.0)
"""Seconds before restarting a child, by how many times in a row it failed; the last repeats."""
STABLE_AFTER = 30.0
"""A child that ran this long before exiting starts again from the first backoff step."""
WATCH_INTERVAL = 0.25
DEMO_HOSTS = ["127.0.0.1", "localhost"]


def _write_private_json(path: Path, document: dict[str, Any]) -> None:
    write_private_file(path, (json.dumps(document, indent=2) + "\n").encode("utf-8"))


async def _with_tls(
    data_dir: Path, databases: Mapping[str, str], credentials: dict[str, Any]
) -> dict[str, Any]:
    """The nodes' URLs as https, certificates for them from the demo CA (made once), and a
    terminal bound to a device certificate (``demo.devices``), kept in its agency's database
    (``databases``: each owner's URL)."""
    now = datetime.now(UTC)
    pki = demo_pki(data_dir / "tls", list(credentials["nodes"]), hosts=DEMO_HOSTS, now=now)
    for node in credentials["nodes"].values():
        node["url"] = "https://" + node["url"].split("://", 1)[1]
    credentials = await with_device_terminal(
        data_dir, databases[DEVICE_NODE.agency_id], credentials, now=now
    )
    return credentials | {"ca_file": str(pki.ca_file), "tls_dir": str(data_dir / "tls")}


async def prepare_demo(
    data_dir: Path,
    nats: NatsServer,
    postgres: PostgresServer,
    *,
    base_port: int = 0,
    auth: NatsAuth | None = None,
    tls: bool = False,
    sites: Mapping[str, PostgresServer] | None = None,
) -> dict[str, Any]:
    """Create each agency's database and the ledger's (:mod:`.databases`), migrate and seed
    them (first run only); with ``auth``, create the streams and the nodes' consumers as the
    operator; with ``tls``, the nodes serve HTTPS from a demo CA; ``sites``: agencies whose
    database is on a Postgres of their own (a leaf site's). Return the credentials document."""
    credentials_path = data_dir / CREDENTIALS_FILE
    previous: dict[str, Any] | None = None
    if credentials_path.exists():
        previous = json.loads(credentials_path.read_text())
        if "databases" not in previous:
            raise RuntimeServiceError(
                f"{data_dir} was made before each agency had its own database; remove it "
                "(rm -rf) to start the demo over"
            )
    elsewhere = {agency: server.url for agency, server in (sites or {}).items()}
    databases = await demo_databases(postgres.url, previous, elsewhere=elsewhere)
    nats_url = nats.url if auth is None else auth.operator_url(nats.url)
    if auth is not None:
        ca = data_dir / "tls" / "ca.pem" if tls else None
        bus = await connect(nats_url, name="demo-operator", tls_ca_file=ca)
        try:
            await provision_bus(bus, DEMO_NODES, duplicate_window=Settings().duplicate_window)
        finally:
            await bus.close()
    if previous is not None:
        credentials = previous | databases.document() | {"nats_url": nats_url}
        if tls:
            credentials = await _with_tls(data_dir, databases.owners, credentials)
        _write_private_json(credentials_path, credentials)
        return credentials
    ports = {
        node.id: (base_port + i if base_port else free_port()) for i, node in enumerate(DEMO_NODES)
    }
    scheme = "https" if tls else "http"
    urls = {node_id: f"{scheme}://127.0.0.1:{port}" for node_id, port in ports.items()}
    seed = make_demo_seed(
        data_dir / "keys", node_urls=urls, pinned_dirs=(data_dir / "keys" / "ledger-writer",)
    )

    async def store(owner: str, url: str) -> None:
        engine = create_engine(url, pool_size=1)
        try:
            sessions = session_factory(engine)
            await store_seed(
                seed,
                SqlDirectory(sessions),
                SqlStatementStore(sessions),
                principals_of=owner,
                principals=owner != LEDGER,
            )
        finally:
            await engine.dispose()

    await asyncio.gather(*(store(owner, url) for owner, url in databases.owners.items()))
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
    } | databases.document()
    if tls:
        credentials = await _with_tls(data_dir, databases.owners, credentials)
    _write_private_json(credentials_path, credentials)
    return credentials


def demo_nats(data_dir: Path) -> tuple[NatsServer, NatsAuth]:
    """The demo's nats-server with the permissions production runs with: one nkey user per
    node, one for the ledger writer, an operator with a password, and no anonymous access (a
    server with an ``authorization`` block refuses clients that present no known user). Clients
    must speak TLS; the server's certificate is from the demo CA (``DATA_DIR/tls/ca.pem``)."""
    auth = prepare_nats_auth(DEMO_NODES, data_dir / "keys")
    pki = demo_pki(data_dir / "tls", ["nats"], hosts=DEMO_HOSTS, now=datetime.now(UTC))
    server = NatsServer(data_dir / "nats", extra_config=auth.config, tls=pki.certificates["nats"])
    return server, auth


async def run_demo(data_dir: Path, *, simulate: bool = False, base_port: int = 0) -> None:
    started = time.monotonic()
    stop = stop_event()
    data_dir.mkdir(parents=True, exist_ok=True)
    data_dir.chmod(0o711)  # the postgres system user must traverse it when we run as root
    print(f"blo-exchange demo: data in {data_dir}", flush=True)
    nats_server, auth = demo_nats(data_dir)
    with (
        nats_server as nats,
        PostgresServer(data_dir / "postgres" / "data") as pg,
    ):
        credentials = await prepare_demo(
            data_dir, nats, pg, base_port=base_port, auth=auth, tls=True
        )
        processes = DemoProcesses(data_dir, credentials, auth=auth)
        try:
            processes.start()
            await processes.wait_ready()
            _print_banner(data_dir, credentials, time.monotonic() - started)
            supervisor = asyncio.create_task(supervise(nats, pg, processes, stop))
            tasks = []
            if simulate:
                from blo_exchange.demo.simulator import simulate_alerts

                tasks.append(asyncio.create_task(simulate_alerts(credentials, stop)))
            await stop.wait()
            print("\nstopping…", flush=True)
            for task in tasks:
                task.cancel()
            # Not cancelled: a server it is starting again (in a thread) would be left behind.
            await supervisor
        finally:
            processes.stop()


@dataclass
class _Child:
    name: str
    alive: Callable[[], bool]
    """Reaps the process if it exited (``Popen.poll``), so no zombie is left."""
    exit_code: Callable[[], int | None]
    start: Callable[[], None]
    """Blocking: a server's start returns once it serves."""
    failures: int = 0
    started_at: float = 0.0
    due: float | None = None  # when to start it again; None while it runs


def _children(nats: NatsServer, pg: PostgresServer, processes: DemoProcesses) -> list[_Child]:
    def code_of(name: str) -> Callable[[], int | None]:
        return lambda: processes.processes[name].returncode

    def alive_of(name: str) -> Callable[[], bool]:
        return lambda: processes.processes[name].poll() is None

    def start_of(name: str) -> Callable[[], None]:
        return lambda: processes.respawn(name)

    # The servers first: a node started again before them would only wait for them.
    children = [
        _Child("nats-server", lambda: nats.running, lambda: None, nats.start),
        _Child("postgres", lambda: pg.running, lambda: None, pg.start),
    ]
    children += [
        _Child(name, alive_of(name), code_of(name), start_of(name)) for name in processes.processes
    ]
    return children


async def supervise(
    nats: NatsServer,
    pg: PostgresServer,
    processes: DemoProcesses,
    stop: asyncio.Event,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Until ``stop``: reap any child that exited, say so, and start it again after a backoff.

    Every :data:`WATCH_INTERVAL` each child is polled, which also reaps an exited one (no
    zombie). A child that fails again soon after a restart waits longer each time
    (:data:`BACKOFF`); one that ran :data:`STABLE_AFTER` seconds starts from the first step.
    """
    children = _children(nats, pg, processes)
    now = clock()
    for child in children:
        child.started_at = now
    while not stop.is_set():
        for child in children:
            if stop.is_set():
                return
            now = clock()
            if child.due is None:
                if child.alive():
                    continue
                if now - child.started_at >= STABLE_AFTER:
                    child.failures = 0
                delay = BACKOFF[min(child.failures, len(BACKOFF) - 1)]
                child.failures += 1
                child.due = now + delay
                code = child.exit_code()
                how = "" if code is None else f" (exit code {code})"
                print(f"{child.name} exited{how}; restarting in {delay:g} s", flush=True)
                continue
            if now < child.due:
                continue
            try:
                await asyncio.to_thread(child.start)
            except Exception as exc:
                delay = BACKOFF[min(child.failures, len(BACKOFF) - 1)]
                child.failures += 1
                child.due = clock() + delay
                print(f"{child.name} did not start ({exc}); retrying in {delay:g} s", flush=True)
                continue
            child.due = None
            child.started_at = clock()
            print(f"{child.name} restarted", flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), WATCH_INTERVAL)


def _print_banner(data_dir: Path, credentials: dict[str, Any], seconds: float) -> None:
    print(f"\nready in {seconds:.1f} s. Nodes:", flush=True)
    for node_id, node in credentials["nodes"].items():
        pairs = ",".join(node["border_pairs"])
        print(f"  {node_id:<18} {node['url']:<24} {node['agency']:<24} {pairs}")
    # The URL carries the operator's password; that stays in the 0600 credentials file.
    print(f"\nNATS      {without_userinfo(credentials['nats_url'])} (nkey users only)")
    databases = credentials.get("databases", {})
    names = ", ".join(urlsplit(url).path.lstrip("/") for url in databases.values())
    print(f"Postgres  {names} (a database and login role each, no superuser)")
    print(f"tokens    {data_dir / CREDENTIALS_FILE} (0600)")
    if "ca_file" in credentials:
        print(f"CA        {credentials['ca_file']} (curl --cacert, BLO_CA)")
    for node_id, node in credentials["nodes"].items():
        if "device_terminal" in node:
            device = node["device_terminal"]
            print(
                f"device    {node_id} terminal bound to {device['cert_file']} (--cert, --cert-key)"
            )
    print("logs      " + str(data_dir / "logs"))
    print("\nPress Ctrl-C to stop.", flush=True)
