"""The real processes of a demo, each of which a test can kill, stop and restart on its own.

It reuses :func:`prepare_demo` (migrate, seed, credentials) and the spawn approach of
:class:`DemoProcesses` (``python -m blo_exchange serve`` / ``ledger-writer`` in their own session),
adding per-process control. Only the processes the KG→TJ path needs run: the KG node (where the
terminal posts), the TJ Karamyk node (the recipient whose feed is checked) and the ledger writer.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import os
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text

from blo_exchange.db.engine import create_engine
from blo_exchange.db.provision import LEDGER
from blo_exchange.demo.databases import superuser_url
from blo_exchange.demo.processes import DemoProcesses
from blo_exchange.demo.supervisor import prepare_demo
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.embedded import NatsServer, PostgresServer

__all__ = [
    "KG",
    "LEDGER_WRITER",
    "TJ",
    "FaultSystem",
    "LoadResult",
    "Terminal",
    "alert_body",
    "run_load",
]

KG = "blo-karamyk-kg"
TJ = "blo-karamyk-tj"
LEDGER_WRITER = "ledger-writer"
MARK = "fault-test "


def alert_body(key: str) -> dict[str, Any]:
    """The example seizure, its narrative carrying the key so the feed shows which request it is."""
    body = copy.deepcopy(EXAMPLE_SEIZURE)
    body["case"]["narrative"]["text"] = MARK + key
    return body


class FaultProcesses(DemoProcesses):
    """DemoProcesses with one process at a time: spawn, kill -9, SIGTERM, restart."""

    def __init__(
        self, data_dir: Path, credentials: dict[str, Any], env: dict[str, str] | None = None
    ) -> None:
        super().__init__(data_dir, credentials)
        self.extra_env = dict(env or {})

    def spawn(self, name: str, **env: str) -> None:
        extra = self.extra_env | env
        if name == LEDGER_WRITER:
            key_dir = str(self._data_dir / "keys" / LEDGER_WRITER)
            self._spawn(name, ["ledger-writer"], self._env(BLO_KEY_DIR=key_dir, **extra))
            return
        node = self._credentials["nodes"][name]
        self._spawn(
            name,
            ["serve"],
            self._env(
                BLO_NODE_ID=name,
                BLO_KEY_DIR=str(self._data_dir / "keys" / name),
                BLO_HTTP_PORT=node["url"].rsplit(":", 1)[1],
                **extra,
            ),
        )

    def kill(self, name: str) -> None:
        process = self.processes[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)

    def terminate(self, name: str, timeout: float = 30.0) -> int:
        process = self.processes[name]
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout)

    def alive(self, name: str) -> bool:
        return name in self.processes and self.processes[name].poll() is None

    async def wait_node(self, name: str, timeout: float = 60.0) -> None:
        url = self._credentials["nodes"][name]["url"] + "/readyz"
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if not self.alive(name):
                    raise AssertionError(f"{name} exited: " + self.log_tail(name))
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(url)).status_code == 200:
                        return
                await asyncio.sleep(0.2)
        raise AssertionError(f"{name} not ready after {timeout}s: " + self.log_tail(name))

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self._data_dir / "logs" / f"{name}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class FaultSystem:
    """NATS, Postgres and the three processes, under ``base``."""

    def __init__(self, base: Path, *, env: dict[str, str] | None = None) -> None:
        self.base = base
        self.nats = NatsServer(base / "nats")
        self.postgres = PostgresServer(base / "postgres" / "data")
        self._env = env or {}
        self.credentials: dict[str, Any] = {}
        self._processes: FaultProcesses | None = None

    @property
    def processes(self) -> FaultProcesses:
        assert self._processes is not None, "start() first"
        return self._processes

    async def start(self) -> None:
        self.base.mkdir(parents=True, exist_ok=True)
        self.base.chmod(0o711)
        self.postgres.data_dir.parent.mkdir(mode=0o711, exist_ok=True)
        self.nats.start()
        self.postgres.start()
        self.credentials = await prepare_demo(self.base, self.nats, self.postgres)
        self._processes = FaultProcesses(self.base, self.credentials, self._env)
        for name in (KG, TJ):
            self.processes.spawn(name)
        await self.restart(LEDGER_WRITER)
        await self.processes.wait_node(KG)
        await self.processes.wait_node(TJ)

    async def restart(self, name: str, **env: str) -> None:
        self.processes.spawn(name, **env)
        if name != LEDGER_WRITER:
            await self.processes.wait_node(name)
            return
        await asyncio.sleep(1.0)  # it has no /readyz; a bad start shows within a second
        if not self.processes.alive(name):
            raise AssertionError(f"{name} exited: " + self.processes.log_tail(name))

    async def heal(self) -> None:
        """Bring back whatever a failed scenario left down."""
        if not self.nats.running:
            self.nats.start()
        if not self.postgres.running:
            self.postgres.start()
        for name in (LEDGER_WRITER, KG, TJ):
            if not self.processes.alive(name):
                await self.restart(name)

    def stop(self) -> None:
        if self._processes is not None:
            self._processes.stop()
        self.postgres.stop()
        self.nats.stop()

    def node(self, name: str) -> dict[str, Any]:
        node: dict[str, Any] = self.credentials["nodes"][name]
        return node

    async def feed(self, prefix: str, node: str = TJ) -> list[tuple[str, str]]:
        """(alert id, key) of every alert of this run in ``node``'s analyst's feed, oldest
        first."""
        tj = self.node(node)
        items: list[tuple[str, str]] = []
        cursor = 0
        async with httpx.AsyncClient(timeout=30.0) as client:
            for _ in range(10_000):
                response = await client.get(
                    tj["url"] + "/v1/feed",
                    params={"cursor": cursor, "limit": 500},
                    headers={"Authorization": f"Bearer {tj['analyst_token']}"},
                )
                response.raise_for_status()
                page = response.json()
                for item in page["items"]:
                    text_ = str(item["case"].get("narrative", {}).get("text", ""))
                    if text_.startswith(MARK + prefix):
                        items.append((item["alert_id"], text_.removeprefix(MARK)))
                if not page["items"]:
                    break
                cursor = page["next_cursor"]
        return items

    async def sql(
        self, query: str, *, database: str = LEDGER, **params: Any
    ) -> list[tuple[Any, ...]]:
        """``query`` on ``database`` (the ledger's, or an agency id's), as the superuser."""
        engine = create_engine(superuser_url(self.credentials, database), pool_size=1)
        try:
            async with engine.connect() as conn:
                return [tuple(r) for r in await conn.execute(text(query), params)]
        finally:
            await engine.dispose()

    async def shared(self) -> list[str]:
        rows = await self.sql("SELECT alert_id FROM ledger_entries WHERE type = 'alert_shared'")
        return [str(r[0]) for r in rows]


@dataclass
class LoadResult:
    acknowledged: dict[str, str] = field(default_factory=dict)  # key -> alert_id
    acknowledged_at: dict[str, float] = field(default_factory=dict)  # key -> time.monotonic()
    refused: dict[str, int] = field(default_factory=dict)  # key -> status
    gave_up: list[str] = field(default_factory=list)
    attempts: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # what the retries were for

    def note(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


class Terminal:
    """A KG officer's terminal: retries a post with the SAME key until 202 or a refusal."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        settle: float = 60.0,
        timeout: float = 10.0,
        body: Callable[[str], dict[str, Any]] = alert_body,
    ):
        self._url = url + "/v1/alerts"
        self._body = body
        self._headers = {"Authorization": f"Bearer {token}"}
        self._settle = settle
        self._timeout = timeout

    async def post(self, client: httpx.AsyncClient, key: str, result: LoadResult) -> None:
        deadline = time.monotonic() + self._settle
        body = self._body(key)
        for attempt in range(1000):
            result.attempts += 1
            try:
                response = await client.post(
                    self._url,
                    json=body,
                    headers=self._headers | {"Idempotency-Key": key},
                    timeout=self._timeout,
                )
            except httpx.TransportError as exc:
                result.note(type(exc).__name__)
            else:
                if response.status_code == 202:
                    result.acknowledged[key] = response.json()["alert_id"]
                    result.acknowledged_at[key] = time.monotonic()
                    return
                if 400 <= response.status_code < 500 and response.status_code not in (409, 429):
                    result.refused[key] = response.status_code
                    return
                result.note(str(response.status_code))
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(min(1.0, 0.1 * (attempt + 1)))
        result.gave_up.append(key)


async def run_load(
    terminal: Terminal,
    prefix: str,
    *,
    duration: float,
    workers: int,
    fault: Callable[[], Awaitable[None]] | None = None,
    fault_after: float = 2.0,
) -> LoadResult:
    """Post from ``workers`` concurrent loops for ``duration`` seconds; run ``fault`` meanwhile."""
    result = LoadResult()
    counter = iter(range(1_000_000))
    started = time.monotonic()

    async def worker(client: httpx.AsyncClient) -> None:
        while time.monotonic() - started < duration:
            await terminal.post(client, f"{prefix}-{next(counter):06d}", result)

    async def injector() -> None:
        assert fault is not None
        await asyncio.sleep(fault_after)
        await fault()

    # A fresh connection per request: a killed node must not leave a dead pooled one behind.
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits) as client:
        tasks = [asyncio.create_task(worker(client)) for _ in range(workers)]
        if fault is not None:
            tasks.append(asyncio.create_task(injector()))
        await asyncio.gather(*tasks)
    return result


def send_signal(process: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(sig)
