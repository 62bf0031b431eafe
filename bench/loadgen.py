"""The load generator: a separate process, so it never runs on a node's event loop.

    python -m bench.loadgen SPEC.json OUT.json

SPEC is ``{"tasks": [...], "drain": seconds}``; the tasks run concurrently in one asyncio loop.
Listener tasks (``sse``, ``ledger_tail``) connect first; posting tasks (``closed``, ``open``,
``batch``, ``queue``) start once every listener is connected. Listeners stop when they have seen
every alert the posters got a 202 for, or ``drain`` seconds after the last poster finished.

HTTP/1.1 with keep-alive over raw asyncio streams, not httpx: the generator shares the machine's
two cores with the system under test, and a client that spends 1 ms of CPU per request would
measure itself. The generator reports its own CPU use (``cpu_seconds``, ``cpu_share``).

Every loop is bounded by a duration and a count; every address is loopback.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

from bench.loadgen_core import Shared, process_cpu
from bench.loadgen_posters import run_batch, run_closed, run_open
from bench.loadgen_queue import prepare_queue, run_queue
from bench.loadgen_readers import run_ledger_tail, run_sse


async def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    tasks = spec["tasks"]
    # Before the clock: what a queue task puts on the bus is sealed (and stored) first.
    prepared = [await prepare_queue(t) if t["type"] == "queue" else {} for t in tasks]
    shared = Shared(t0=time.monotonic())
    drain = float(spec.get("drain", 10))
    posters = [t for t in tasks if t["type"] in ("closed", "open", "batch", "queue")]
    shared.posters_left = len(posters)
    listeners = [t for t in tasks if t["type"] == "sse"]
    cpu0, wall0 = process_cpu(), time.monotonic()
    coros = []
    for task in tasks:
        if task["type"] == "closed":
            coros.append(run_closed(task, shared))
        elif task["type"] == "open":
            coros.append(run_open(task, shared))
        elif task["type"] == "batch":
            coros.append(run_batch(task, shared))
        elif task["type"] == "queue":
            coros.append(run_queue(task, prepared[tasks.index(task)], shared))
        elif task["type"] == "sse":
            coros.append(run_sse(task, shared, drain))
        elif task["type"] == "ledger_tail":
            coros.append(run_ledger_tail(task, shared, drain))
        else:
            raise ValueError(task["type"])
    if not listeners:
        shared.posting_started.set()
    results = await asyncio.gather(*coros)
    for task, result in zip(tasks, results, strict=True):
        if task.get("name"):
            result["name"] = task["name"]
    wall = time.monotonic() - wall0
    cpu = process_cpu() - cpu0
    out = {
        "results": list(results),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_share": cpu / wall if wall else 0.0,
    }
    if spec.get("posted_ids_out"):  # bench.e2e looks their ledger entries up
        out["posted_ids"] = list(shared.posted_id)
    return out


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    random.seed(1)
    if spec.get("mode") == "raw":
        from bench.raw import run_raw

        result = asyncio.run(run_raw(spec))
    else:
        result = asyncio.run(run_spec(spec))
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
