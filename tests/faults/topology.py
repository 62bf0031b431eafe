"""NATS topologies for the fault suite: a 3-server cluster on loopback, a leaf site behind a link
that a test can cut (:class:`Link`), and the fault systems built on them.

The cluster is what deploy/nats/hub-{1,2,3}.conf describe, on loopback ports; the leaf is
deploy/nats/leaf-site.conf. Only the ports and directories differ.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from nats.errors import Error as NatsError
from nats.js.errors import Error as JsError

from blo_exchange.bus.connection import connect
from blo_exchange.bus.streams import ALL_STREAMS, ensure_streams
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.demo.supervisor import prepare_demo
from blo_exchange.embedded import NatsServer, PostgresServer, free_port
from tests.faults.harness import KG, LEDGER_WRITER, TJ, FaultProcesses, FaultSystem

__all__ = [
    "HUB_DOMAIN",
    "SITE_DOMAIN",
    "ClusterSystem",
    "LeafSystem",
    "Link",
    "create_streams",
    "hub_cluster",
    "hub_server",
    "leaf_site",
    "wait_meta_leader",
]

HUB_DOMAIN = "hub"
SITE_DOMAIN = "karamyk"
CLUSTER = "blo-hub"
KG_AGENCY = next(n.agency_id for n in DEMO_NODES if n.id == KG)
# Events and attachment chunks cross the link by stream sourcing only, never as core NATS.
SITE_ONLY = '["blo.v1.>", "$O.BLO_ATTACHMENTS.>"]'


def _distinct_ports(n: int) -> list[int]:
    ports: list[int] = []
    for _ in range(100):
        port = free_port()
        if port not in ports:
            ports.append(port)
        if len(ports) == n:
            return ports
    raise AssertionError("no free ports")


def hub_cluster(
    base: Path, *, size: int = 3, domain: str | None = None, leaf_port: int | None = None
) -> list[NatsServer]:
    """``size`` clustered servers (not started); with ``leaf_port`` the first accepts leaf nodes."""
    routes = _distinct_ports(size)
    servers = []
    for i, port in enumerate(routes):
        extra = [
            "cluster {",
            f"  name: {CLUSTER}",
            f'  listen: "127.0.0.1:{port}"',
            "  routes: [" + ", ".join(f'"nats-route://127.0.0.1:{p}"' for p in routes) + "]",
            "}",
        ]
        servers.append(_server(base / f"hub-{i + 1}", f"hub-{i + 1}", extra, domain, leaf_port))
        leaf_port = None
    return servers


def hub_server(base: Path, *, leaf_port: int) -> NatsServer:
    """A single hub server, JetStream domain ``hub``, accepting leaf nodes on ``leaf_port``."""
    return _server(base / "hub", "hub", [], HUB_DOMAIN, leaf_port)


def leaf_site(base: Path, *, hub_leaf_url: str, domain: str = SITE_DOMAIN) -> NatsServer:
    """A site's leaf node with its own JetStream domain, connecting to ``hub_leaf_url``."""
    extra = [
        "leafnodes {",
        '  reconnect: "1s"',
        "  remotes: [",
        f'    {{ urls: ["{hub_leaf_url}"], deny_imports: {SITE_ONLY}, deny_exports: {SITE_ONLY} }}',
        "  ]",
        "}",
    ]
    return _server(base / f"leaf-{domain}", f"leaf-{domain}", extra, domain, None)


def _server(
    base: Path, name: str, extra: list[str], domain: str | None, leaf_port: int | None
) -> NatsServer:
    if leaf_port is not None:
        # no_advertise: a leaf must keep to the URL it is given (the link), not learn this one.
        extra = [
            *extra,
            "leafnodes {",
            f'  listen: "127.0.0.1:{leaf_port}"',
            "  no_advertise: true",
            "}",
        ]
    return NatsServer(
        base, server_name=name, extra_config="\n".join(extra), jetstream_domain=domain
    )


def wait_meta_leader(servers: list[NatsServer], timeout: float = 30.0) -> str:
    """Wait until every running server names the same JetStream meta leader; return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        leaders = {_meta_leader(s) for s in servers if s.running}
        if len(leaders) == 1 and None not in leaders:
            return str(leaders.pop())
        time.sleep(0.2)
    raise AssertionError(f"no JetStream meta leader after {timeout}s")


def _meta_leader(server: NatsServer) -> str | None:
    url = f"{server.monitoring_url}/jsz"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            leader = json.load(response).get("meta_cluster", {}).get("leader")
    except (OSError, ValueError):
        return None
    return str(leader) if leader else None


class Link:
    """The mountain link: a TCP relay from ``port`` to ``target`` that a test cuts and restores.

    Cutting closes the listener and every relayed connection at once, as a dead link does to the
    leaf connection; nothing on either side is told beforehand.
    """

    def __init__(self, target_port: int, *, port: int | None = None) -> None:
        self.target_port = target_port
        self.port = port if port is not None else free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def up(self) -> bool:
        return self._server is not None

    async def restore(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(
                self._relay, "127.0.0.1", self.port, reuse_address=True
            )

    async def cut(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()
        if server is not None:
            await server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.transport.abort()
            return
        self._writers |= {writer, up_writer}
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.transport.abort()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    writer.transport.abort()


class ClusterSystem(FaultSystem):
    """The fault system over a 3-server JetStream cluster, streams R3, clients given all three."""

    def __init__(self, base: Path, *, env: dict[str, str] | None = None) -> None:
        super().__init__(base, env=(env or {}) | {"BLO_STREAM_REPLICAS": "3"})
        self.hubs = hub_cluster(base / "nats")
        self.nats = self.hubs[0]  # prepare_demo's; the processes get every server's URL

    async def start(self) -> None:
        _make_base(self)
        for hub in self.hubs:
            hub.start(wait=False)  # JetStream in a cluster waits for a quorum: start all first
        for hub in self.hubs:
            await asyncio.to_thread(hub.wait_healthy, 30.0)
        await asyncio.to_thread(wait_meta_leader, self.hubs)
        self.postgres.start()
        self.credentials = await prepare_demo(self.base, self.nats, self.postgres)
        self.credentials["nats_url"] = ",".join(hub.url for hub in self.hubs)
        await create_streams(self.credentials["nats_url"], replicas=3)
        self._processes = FaultProcesses(self.base, self.credentials, self._env)
        await _spawn_all(self)

    async def heal(self) -> None:
        for hub in self.hubs:
            if not hub.running:
                hub.start()
        await super().heal()

    def stop(self) -> None:
        super().stop()
        for hub in self.hubs:
            hub.stop()


class SiteProcesses(FaultProcesses):
    """FaultProcesses where some processes run at the site, with settings of their own."""

    def __init__(
        self,
        data_dir: Path,
        credentials: dict[str, Any],
        env: dict[str, str],
        site_env: dict[str, dict[str, str]],
    ) -> None:
        super().__init__(data_dir, credentials, env)
        self.site_env = site_env

    def spawn(self, name: str, **env: str) -> None:
        super().spawn(name, **(self.site_env.get(name, {}) | env))


class LeafSystem(FaultSystem):
    """KG's node at a leaf site (domain ``karamyk``) behind a :class:`Link` to the hub (domain
    ``hub``), where the TJ node and the ledger writer run and the streams source the site's.
    The site has its own Postgres with KG's database; KG's node publishes to the site's streams
    and reads the hub's across the leaf (``BLO_CONSUME_DOMAIN=hub``).

    Start, use and stop it inside one event loop: the link is a server of that loop.
    """

    def __init__(self, base: Path, *, env: dict[str, str] | None = None) -> None:
        super().__init__(base, env=(env or {}) | {"BLO_STREAM_SOURCE_DOMAINS": SITE_DOMAIN})
        leaf_port = free_port()
        self.hub = hub_server(base / "nats", leaf_port=leaf_port)
        self.link = Link(leaf_port)
        self.leaf = leaf_site(base / "nats", hub_leaf_url=f"nats-leaf://127.0.0.1:{self.link.port}")
        self.nats = self.hub
        self.site_postgres = PostgresServer(base / "site-postgres" / "data")

    async def start(self) -> None:
        _make_base(self)
        await self.link.restore()
        self.hub.start()
        self.leaf.start()
        self.postgres.start()
        self.site_postgres.data_dir.parent.mkdir(mode=0o711, exist_ok=True)
        self.site_postgres.start()
        self.credentials = await prepare_demo(
            self.base, self.hub, self.postgres, sites={KG_AGENCY: self.site_postgres}
        )
        # The site's node talks to the site's server only; its streams source nothing, and its
        # consumers read the hub's streams through the leaf.
        site = {
            KG: {
                "BLO_NATS_URL": self.leaf.url,
                "BLO_STREAM_SOURCE_DOMAINS": "",
                "BLO_CONSUME_DOMAIN": HUB_DOMAIN,
            }
        }
        self._processes = SiteProcesses(self.base, self.credentials, self._env, site)
        await _spawn_all(self)

    async def wait_leaf(self, *, connected: bool = True, timeout: float = 30.0) -> None:
        """Wait until the hub has (or, ``connected=False``, no longer has) the leaf connected."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (await asyncio.to_thread(_leaf_count, self.hub) > 0) == connected:
                return
            await asyncio.sleep(0.2)
        raise AssertionError(f"the leaf's connection to the hub is not {connected} in {timeout}s")

    def stop(self) -> None:
        super().stop()
        self.leaf.stop()
        self.site_postgres.stop()


async def create_streams(url: str, *, replicas: int, timeout: float = 30.0) -> None:
    """As the operator would before the first node starts: create the streams and wait until
    each has a leader. A freshly elected meta leader may time out the first requests, and nodes
    starting side by side would otherwise race each other's create with their update."""
    bus = await connect(url, name="fault-operator")
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                await ensure_streams(bus.js, duplicate_window=24 * 3600.0, replicas=replicas)
                infos = [await bus.js.stream_info(spec.name) for spec in ALL_STREAMS]
                if all(info.cluster is not None and info.cluster.leader for info in infos):
                    return
            except (NatsError, JsError, TimeoutError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"streams without a leader after {timeout}s")
            await asyncio.sleep(0.5)
    finally:
        await bus.close()


def _leaf_count(server: NatsServer) -> int:
    url = f"{server.monitoring_url}/varz"
    try:
        with urllib.request.urlopen(url, timeout=1.0) as response:
            return int(json.load(response).get("leafnodes", 0))
    except (OSError, ValueError):
        return 0


def _make_base(system: FaultSystem) -> None:
    system.base.mkdir(parents=True, exist_ok=True)
    system.base.chmod(0o711)
    system.postgres.data_dir.parent.mkdir(mode=0o711, exist_ok=True)


async def _spawn_all(system: FaultSystem) -> None:
    for name in (KG, TJ):
        system.processes.spawn(name)
    await system.restart(LEDGER_WRITER)
    await system.processes.wait_node(KG)
    await system.processes.wait_node(TJ)
