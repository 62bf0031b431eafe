"""kill -9 of one server of a 3-server JetStream cluster (streams R3) under a steady load of
posts; the clients hold every server's URL. Then the set checker's verdict: zero lost, zero
duplicated. Alternate rounds kill the meta leader and a follower.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from pathlib import Path

from nats.errors import Error as NatsError
from nats.js.errors import Error as JsError

from blo_exchange.bus.connection import connect
from blo_exchange.bus.streams import ALL_STREAMS
from blo_exchange.embedded import NatsServer
from blo_exchange.embedded.nats import check_config
from tests.faults.conftest import LONG
from tests.faults.harness import KG, Terminal, run_load
from tests.faults.test_crashes import settle
from tests.faults.topology import ClusterSystem, wait_meta_leader

DURATION = 60.0 if LONG else 6.0
WORKERS = 4 if LONG else 3
DOWN_FOR = 3.0 if LONG else 1.5
ROUNDS = 4 if LONG else 1
SETTLE = 120.0 if LONG else 45.0


def _victim(system: ClusterSystem, round_: int) -> NatsServer:
    leader = wait_meta_leader(system.hubs)
    if round_ % 2 == 0:
        return next(h for h in system.hubs if h.server_name == leader)
    return next(h for h in system.hubs if h.server_name != leader)


async def _replicas(system: ClusterSystem) -> dict[str, int]:
    """Each stream's replicas as the cluster reports them (the leader and its peers)."""
    bus = await connect(system.credentials["nats_url"], name="fault-test")
    replicas = {}
    try:
        for spec in ALL_STREAMS:
            for attempt in range(20):  # a stream whose peer just came back may answer late
                try:
                    info = await bus.js.stream_info(spec.name)
                except (NatsError, JsError, TimeoutError):
                    if attempt == 19:
                        raise
                    await asyncio.sleep(0.5)
                    continue
                peers = info.cluster.replicas if info.cluster and info.cluster.replicas else []
                replicas[spec.name] = 1 + len(peers)
                break
        return replicas
    finally:
        await bus.close()


async def test_cluster_server_killed_nothing_lost_or_duplicated(runtime_dir: Path) -> None:
    base = Path(os.path.realpath(runtime_dir)) / f"cluster-{uuid.uuid4().hex[:8]}"
    system = ClusterSystem(base, env={"BLO_STALE_IDEMPOTENCY_SECONDS": "3", "BLO_RATE_LIMIT": "0"})
    killed: list[str] = []
    try:
        started = time.monotonic()
        await system.start()
        startup = time.monotonic() - started
        for hub in system.hubs:
            check_config(hub.config_path)
        kg = system.node(KG)
        terminal = Terminal(kg["url"], kg["terminal_token"], settle=SETTLE)
        prefix = f"cluster-{int(time.time())}"

        async def faults() -> None:
            for round_ in range(ROUNDS):
                victim = await asyncio.to_thread(_victim, system, round_)
                killed.append(victim.server_name)
                victim.kill()
                await asyncio.sleep(DOWN_FOR)
                await asyncio.to_thread(victim.start)
                await asyncio.sleep(DURATION / (ROUNDS + 1) - DOWN_FOR)

        started = time.monotonic()
        load = await run_load(terminal, prefix, duration=DURATION, workers=WORKERS, fault=faults)
        loaded = time.monotonic() - started
        verdict, waited = await settle(system, prefix, load)
        replicas = await _replicas(system)
        report = {
            "scenario": "cluster-kill-one",
            **verdict.summary(),
            "killed": killed,
            "replicas": replicas,
            "refused": len(load.refused),
            "gave_up": len(load.gave_up),
            "attempts": load.attempts,
            "retried_for": load.errors,
            "startup_seconds": round(startup, 1),
            "load_seconds": round(loaded, 1),
            "settle_seconds": round(waited, 1),
        }
        print("\nFAULTS " + json.dumps(report), flush=True)
        assert set(replicas.values()) == {3}, replicas
        assert not load.refused, load.refused
        assert not load.gave_up, load.gave_up
        assert verdict.acknowledged > 0
        assert not verdict.duplicates, verdict.duplicates
        assert not verdict.lost, sorted(verdict.lost)
        assert not verdict.lost_in_ledger, sorted(verdict.lost_in_ledger)
    finally:
        system.stop()
