"""A demo deployment inside the test process: four nodes and a ledger writer on real servers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx

from blo_exchange.bootstrap.app import create_app
from blo_exchange.bootstrap.ledger_writer import LedgerWriterRuntime
from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.config import Settings
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, migrate, session_factory
from blo_exchange.db.statements import SqlStatementStore
from blo_exchange.demo.directory import (
    DEMO_NODES,
    LEDGER_WRITER_DIR,
    PINNED_ROOTS_FILE,
    DemoSeed,
    seed_demo,
)
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger.entries import entry_json
from blo_exchange.ledger.ports import EntryFilter

T = TypeVar("T")


@dataclass
class Deployment:
    seed: DemoSeed
    runtimes: dict[str, NodeRuntime]
    clients: dict[str, httpx.AsyncClient]

    def client(self, node_id: str) -> httpx.AsyncClient:
        return self.clients[node_id]

    def terminal(self, node_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed.terminal_tokens[node_id]}"}

    def analyst(self, node_id: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed.analyst_tokens[node_id]}"}

    @property
    def auditor(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.seed.auditor_token}"}

    @property
    def writer_host(self) -> NodeRuntime:
        """The node whose process runs the ledger writer (the first demo node)."""
        return self.runtimes[DEMO_NODES[0].id]

    async def stop_ledger_writer(self) -> LedgerWriterRuntime:
        """Stop the writer once its batch in hand is committed: nothing is appended or signed
        until :meth:`start_ledger_writer`. Messages published meanwhile wait in JetStream."""
        writer = self.writer_host.ledger_writer
        assert writer is not None
        await writer.close()
        return writer

    def start_ledger_writer(self) -> LedgerWriterRuntime:
        """A new writer instance on the same durable consumers (what a restarted process does)."""
        host = self.writer_host
        writer = LedgerWriterRuntime.build(
            host.settings,
            bus=host.bus,
            sessions=session_factory(host.engine),
            directory=host.directory,
            trusted=host.trusted,
        )
        host.ledger_writer = writer
        host.tasks.extend(writer.start())
        return writer

    def invalidate_directories(self) -> None:
        """Drop every node's directory cache, as its few seconds running out would."""
        for runtime in self.runtimes.values():
            runtime.directory.invalidate()
            if runtime.trusted is not None:
                runtime.trusted.invalidate()


async def eventually(
    probe: Callable[[], Awaitable[T | None]], *, timeout: float = 10.0, what: str = "condition"
) -> T:
    """Poll until ``probe`` returns something truthy; fail with ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    pause = 0.02
    while True:
        value = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(pause)
        pause = min(pause * 2, 0.5)  # each probe costs the servers it waits for


@asynccontextmanager
async def deployment(
    database_url: str,
    nats_url: str,
    key_root: Path,
    *,
    signed: bool = False,
    retention_clock: Callable[[], datetime] = utc_now,
) -> AsyncIterator[Deployment]:
    """With ``signed``, as ``make run`` does: the directory is statements signed by the agencies'
    roots, and every node (the ledger writer too) trusts only the roots pinned in its key dir.
    ``retention_clock``: the time every node's personal-data lifecycle runs on."""
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=2)
    try:
        sessions = session_factory(engine)
        seed = await seed_demo(
            SqlDirectory(sessions),
            key_root,
            statements=SqlStatementStore(sessions) if signed else None,
        )
    finally:
        await engine.dispose()
    runtimes: dict[str, NodeRuntime] = {}
    clients: dict[str, httpx.AsyncClient] = {}
    try:
        for index, node in enumerate(DEMO_NODES):
            settings = Settings(
                node_id=node.id,
                database_url=database_url,  # type: ignore[arg-type]
                nats_url=nats_url,  # type: ignore[arg-type]
                key_dir=key_root / node.id,
                run_ledger_writer=index == 0,
                pinned_roots_file=key_root / node.id / PINNED_ROOTS_FILE if signed else None,
                # The ledger key the agencies' roots co-signed, where make run keeps it.
                ledger_key_file=key_root / LEDGER_WRITER_DIR / "ledger.key"
                if signed and index == 0
                else None,
            )
            runtime = await NodeRuntime.start(settings, retention_clock=retention_clock)
            runtimes[node.id] = runtime
            clients[node.id] = httpx.AsyncClient(
                transport=httpx.ASGITransport(app=create_app(settings, services=runtime.services)),
                base_url=f"http://{node.id}.test",
            )
        yield Deployment(seed=seed, runtimes=runtimes, clients=clients)
    finally:
        for client in clients.values():
            await client.aclose()
        for runtime in runtimes.values():
            await runtime.stop()


def feed_has(deploy: Deployment, node_id: str, alert_id: str) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        response = await deploy.client(node_id).get("/v1/feed", headers=deploy.analyst(node_id))
        assert response.status_code == 200, response.text
        matches = [i for i in response.json()["items"] if i["alert_id"] == alert_id]
        return matches[0] if matches else None

    return probe


def ledger_has(deploy: Deployment, node_id: str, **params: str) -> Callable[[], Awaitable[Any]]:
    """Entries matching ``params`` as ``GET /v1/ledger/entries`` gives them, read from the store.

    Not through the API: every auditor read is itself ledgered (a signed ``ledger_queried``
    record, an append and a checkpoint), so a probe polling the API twenty times a second made
    the writer it waits for busier with each poll — on a loaded machine, past the timeout. The
    API's own answers are tested where the API is the subject.
    """
    store = deploy.runtimes[node_id].ledger

    async def probe() -> Any:
        rows = await store.entries(EntryFilter(**params), after=-1, limit=1000)  # type: ignore[arg-type]
        return [entry_json(index, leaf) for index, leaf in rows]

    return probe
