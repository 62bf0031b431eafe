"""The system under test, started by the bench itself: embedded NATS and Postgres on free loopback
ports in a temp dir, the demo directory seeded (plus an X25519 key per agency, so either HPKE suite
can be benchmarked), node processes, the bare baseline, and the load generator as subprocesses.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psutil

from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, save_private_key
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import async_url, create_engine, session_factory
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.demo.processes import DemoProcesses
from blo_exchange.demo.supervisor import prepare_demo
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.embedded import NatsServer, PostgresServer, free_port
from blo_exchange.services.auth import hash_token, new_token

REPO = Path(__file__).resolve().parents[1]
# This checkout's code, also where the venv's editable install points at another checkout (a
# git worktree sharing a venv): the bench measures the tree it is run from, or BENCH_SRC's (a
# before/after comparison with the same bench).
PYTHONPATH = os.pathsep.join([os.environ.get("BENCH_SRC", str(REPO / "src")), str(REPO)])
KG, TJ, FOTEHOBOD = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj"
ANALYSTS = 100
"""Analysts of the SSE node's agency the bench adds, one per fan-out subscriber."""


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# What every bench node runs with besides the demo's settings: capacity is measured, so the
# per-principal rate limit (a policy, default 20 req/s) is off. Recorded in results.json.
NODE_OVERRIDES = {"BLO_RATE_LIMIT": "0"} | dict(
    item.split("=", 1) for item in os.environ.get("BENCH_NODE_ENV", "").split(",") if "=" in item
)
"""The nodes' settings beyond the demo's: no rate limit, and ``BENCH_NODE_ENV`` (``K=V,K=V``) to
try a setting (recorded in the results' parameters)."""


class BenchDemo(DemoProcesses):
    """The demo's processes exactly as ``make run`` starts them, plus ``NODE_OVERRIDES``, on
    the measured tree's ``src/`` (``BENCH_SRC``'s when set: without ``PYTHONPATH`` they would
    import whatever tree the virtualenv's editable install points at)."""

    def _env(self, **extra: str) -> dict[str, str]:
        return super()._env(**(NODE_OVERRIDES | extra)) | {"PYTHONPATH": PYTHONPATH}


def _agency(node_id: str) -> str:
    return next(n.agency_id for n in DEMO_NODES if n.id == node_id)


class System:
    """NATS + Postgres + a seeded demo directory under ``root``; nothing else running."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o711)  # the postgres system user must traverse it when we run as root
        self._stack = contextlib.ExitStack()
        self.credentials: dict[str, Any] = {}
        self.nats: NatsServer | None = None
        self.postgres: PostgresServer | None = None

    async def start(self) -> None:
        self.nats = self._stack.enter_context(NatsServer(self.root / "nats"))
        self.postgres = self._stack.enter_context(PostgresServer(self.root / "postgres" / "data"))
        self.credentials = await prepare_demo(self.root, self.nats, self.postgres)
        await self._add_x25519_keys()
        await self._add_analysts(TJ, ANALYSTS)

    async def _add_x25519_keys(self) -> None:
        """The demo seeds ML-KEM-768+X25519 agency keys only; add an X25519 one per agency."""
        suite = HpkeSuite("X25519/HKDF-SHA256/AES-256-GCM")
        records = []
        for agency in {n.agency_id for n in DEMO_NODES}:
            key = KemPrivateKey.generate(suite)
            public = key.public_key()
            records.append(
                {
                    "key_id": public.key_id,
                    "owner_kind": "agency",
                    "owner_id": agency,
                    "alg": suite.value,
                    "public": public.public,
                }
            )
            for node in DEMO_NODES:
                if node.agency_id == agency:
                    path = self.root / "keys" / node.id / "agency" / f"{public.key_id}.key"
                    save_private_key(path, key)
        for url in self.credentials["databases"].values():  # each agency's, and the ledger's
            engine = create_engine(url, pool_size=1)
            try:
                directory = SqlDirectory(session_factory(engine))
                for record in records:
                    await directory.add_key(**record)
            finally:
                await engine.dispose()

    async def _add_analysts(self, node_id: str, count: int) -> None:
        """``count`` more analysts of ``node_id``'s agency, for the fan-out: a hundred screens
        are a hundred analysts (a node lets one principal hold only a few streams open)."""
        agency = _agency(node_id)
        # In the agency's own database: the node reads its principals there, nowhere else.
        engine = create_engine(self.credentials["databases"][agency], pool_size=1)
        tokens: list[str] = []
        try:
            directory = SqlDirectory(session_factory(engine))
            for n in range(count):
                token = new_token()
                principal = Principal(
                    id=f"bench-analyst-{n:03d}",
                    role=Role.ANALYST,
                    node_id=None,
                    agency_id=agency,
                    label=f"bench analyst {n}",
                    created_at=datetime.now(UTC),
                )
                await directory.add_principal(principal, hash_token(token))
                tokens.append(token)
        finally:
            await engine.dispose()
        self.credentials["nodes"][node_id]["analyst_tokens"] = tokens

    def node_env(self, node_id: str, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("BLO_")}
        env.update(
            BLO_DATABASE_URL=async_url(self.credentials["databases"][_agency(node_id)]),
            BLO_LEDGER_DATABASE_URL=async_url(
                self.credentials["ledger_witness_databases"][_agency(node_id)]
            ),
            BLO_NATS_URL=self.credentials["nats_url"],
            BLO_NODE_ID=node_id,
            BLO_KEY_DIR=str(self.root / "keys" / node_id),
            PYTHONPATH=PYTHONPATH,
        )
        env.update(NODE_OVERRIDES)
        env.update(extra)
        return env

    def demo_processes(self) -> DemoProcesses:
        """All four demo nodes and the ledger writer, as ``make run`` starts them."""
        return BenchDemo(self.root, self.credentials)

    def stop(self) -> None:
        self._stack.close()


class Served:
    """A ``bench.serve`` process tree (the node or the bare app) on a loopback port."""

    def __init__(self, name: str, process: subprocess.Popen[bytes], url: str, log: Path) -> None:
        self.name = name
        self.process = process
        self.url = url
        self.log = log

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        # Workers that outlive their supervisor (never expected) go with the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def serve(
    name: str,
    *,
    app: str,
    env: dict[str, str],
    logs: Path,
    workers: int = 1,
    mode: str = "uvicorn",
    profile: Path | None = None,
) -> Served:
    port = free_port()
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"{name}.log"
    cmd = [sys.executable, "-m", "bench.serve", "--app", app, "--port", str(port)]
    cmd += ["--workers", str(workers), "--mode", mode]
    if profile is not None:
        cmd += ["--profile", str(profile)]
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            cmd,
            env=env,
            cwd=REPO,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    return Served(name, process, f"http://127.0.0.1:{port}", log_path)


async def wait_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=2.0) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"{url}: process exited with {process.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(url + "/readyz")).status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} not ready after {timeout} s")
            await asyncio.sleep(0.2)


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


class Sampler:
    """Samples RSS and CPU of named process trees every ``interval`` s, in a thread (so it does
    not need the orchestrator's event loop, and costs almost nothing)."""

    def __init__(self, pids: dict[str, int], interval: float = 0.5) -> None:
        self.pids = pids
        self.interval = interval
        self.samples: dict[str, list[tuple[float, float, float]]] = {n: [] for n in pids}
        self.max_rss: dict[str, float] = {}  # per process (MB), the largest in the tree
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._cpu0: dict[str, float] = {}
        self._t0 = 0.0

    def _measure(self, pid: int) -> tuple[float, float]:
        """(largest RSS of one process of the tree in MB, CPU seconds of the whole tree)."""
        rss, cpu = 0.0, 0.0
        for proc in _tree(pid):
            with contextlib.suppress(psutil.Error), proc.oneshot():
                rss = max(rss, proc.memory_info().rss / 2**20)
                times = proc.cpu_times()
                cpu += times.user + times.system
        return rss, cpu

    def _run(self) -> None:
        while not self._stop.is_set():
            now = time.monotonic() - self._t0
            for name, pid in self.pids.items():
                rss, cpu = self._measure(pid)
                self.samples[name].append((now, rss, cpu))
                self.max_rss[name] = max(self.max_rss.get(name, 0.0), rss)
            self._stop.wait(self.interval)

    def __enter__(self) -> Sampler:
        self._t0 = time.monotonic()
        for name, pid in self.pids.items():
            self._cpu0[name] = self._measure(pid)[1]
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        wall = time.monotonic() - self._t0
        for name, pid in self.pids.items():
            cpu = self._measure(pid)[1]
            self.samples[name].append((wall, self.max_rss.get(name, 0.0), cpu))
        self.wall = wall

    def cpu_share(self, name: str) -> float:
        """CPU seconds the tree used per wall second (1.0 = one whole core)."""
        samples = self.samples[name]
        if not samples or self.wall <= 0:
            return 0.0
        return (samples[-1][2] - self._cpu0[name]) / self.wall

    def rss_series(self, name: str) -> list[tuple[float, float]]:
        return [(t, rss) for t, rss, _ in self.samples[name]]


async def run_loadgen(spec: dict[str, Any], workdir: Path, name: str) -> dict[str, Any]:
    """Run ``bench.loadgen`` as its own process; return what it wrote."""
    workdir.mkdir(parents=True, exist_ok=True)
    spec_path = workdir / f"{name}.spec.json"
    out_path = workdir / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    log = workdir / f"{name}.loadgen.log"
    with open(log, "wb") as handle:  # noqa: ASYNC230 - a log file, opened once
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.loadgen",
            str(spec_path),
            str(out_path),
            cwd=REPO,
            env=os.environ | {"PYTHONPATH": PYTHONPATH},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        try:
            code = await asyncio.wait_for(process.wait(), timeout=float(spec.get("timeout", 300)))
        except TimeoutError:
            process.kill()
            await process.wait()
            raise RuntimeError(f"load generator {name} timed out; see {log}") from None
    if code != 0:
        raise RuntimeError(f"load generator {name} failed ({code}): {log.read_text()[-2000:]}")
    result: dict[str, Any] = json.loads(out_path.read_text())
    return result
