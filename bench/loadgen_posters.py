"""The load generator's posting tasks: closed loop, open loop at a fixed rate, batches."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

from bench.loadgen_core import (
    HttpConnection,
    Shared,
    alert_headers,
    alert_request,
    host_port,
    process_cpu,
    raw_request,
    record_202,
    record_event,
    summary,
)
from blo_exchange.domain.examples import EXAMPLE_SEIZURE


async def run_closed(task: dict[str, Any], shared: Shared) -> dict[str, Any]:
    """``concurrency`` connections, each posting back to back, for ``duration`` s (after a
    ``warmup`` whose requests are not counted), at most ``max_requests`` in all."""
    host, port = host_port(task["url"])
    headers = alert_headers(task)
    warmup, duration = float(task.get("warmup", 0)), float(task["duration"])
    limit = int(task.get("max_requests", 10**7))
    record = bool(task.get("record", False))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    sent = 0
    await shared.posting_started.wait()
    start = time.monotonic()
    measure_from = start + warmup
    stop_at = measure_from + duration
    errors: list[str] = []

    async def worker() -> None:
        nonlocal sent
        conn = HttpConnection(host, port)
        while sent < limit:
            now = time.monotonic()
            if now >= stop_at:
                break
            sent += 1
            raw = alert_request(task, headers)
            t = time.monotonic()
            try:
                status, body = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(type(exc).__name__)
                await conn.close()
                await asyncio.sleep(0.05)
                continue
            done = time.monotonic()
            if t >= measure_from and done <= stop_at:
                latencies.append(done - t)
                statuses[status] = statuses.get(status, 0) + 1
            if status == 202:
                record_202(shared, body, done, record, task.get("name", task["type"]), t)
            elif len(errors) < 20:
                errors.append(f"{status}: {body[:200]!r}")
        await conn.close()

    cpu0 = process_cpu()
    await asyncio.gather(*(worker() for _ in range(int(task["concurrency"]))))
    shared.poster_finished()
    ok = statuses.get(202, 0)
    return {
        "type": "closed",
        "concurrency": task["concurrency"],
        "measured_seconds": duration,
        "requests": sum(statuses.values()),
        "accepted": ok,
        "rps": ok / duration,
        "statuses": {str(k): v for k, v in statuses.items()},
        "latency": summary(latencies),
        "errors": errors[:20],
        "cpu_seconds": process_cpu() - cpu0,
    }


async def run_open(task: dict[str, Any], shared: Shared) -> dict[str, Any]:
    """Open loop: one alert every 1/``rate`` s for ``duration`` s, over a pool of connections
    (a request never waits for an earlier one unless the whole pool is busy: then it is late,
    and ``late`` counts it)."""
    host, port = host_port(task["url"])
    headers = alert_headers(task)
    rate, duration = float(task["rate"]), float(task["duration"])
    record = bool(task.get("record", True))
    conns = [HttpConnection(host, port) for _ in range(int(task.get("connections", 32)))]
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for conn in conns:
        pool.put_nowait(conn)
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    statuses: dict[int, int] = {}
    late = 0
    errors: list[str] = []
    await shared.posting_started.wait()
    # The pool's connections are opened before the clock starts, as a terminal's keep-alive
    # connection is open before the alert it sends: otherwise each of the first 32 requests
    # waited for a TCP connect and the node's accept of it (stop 29). One that fails here is
    # opened by its first request, as before.
    connects = await asyncio.gather(*(c.connect() for c in conns), return_exceptions=True)
    errors.extend(f"connect: {type(e).__name__}" for e in connects if isinstance(e, BaseException))
    start = time.monotonic()
    count = int(rate * duration)
    pending: set[asyncio.Task[None]] = set()

    async def one(conn: HttpConnection) -> None:
        raw = alert_request(task, headers)
        t = time.monotonic()
        try:
            status, body = await conn.request(raw)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)
            await conn.close()
            pool.put_nowait(conn)
            return
        done = time.monotonic()
        pool.put_nowait(conn)
        latencies.append(done - t)
        timeline.append((t - start, done - t))
        statuses[status] = statuses.get(status, 0) + 1
        if status == 202:
            record_202(shared, body, done, record, task.get("name", task["type"]), t)
        elif len(errors) < 20:
            errors.append(f"{status}: {body[:200]!r}")

    for i in range(count):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.05:
            late += 1
        conn = await pool.get()
        job = asyncio.create_task(one(conn))
        pending.add(job)
        job.add_done_callback(pending.discard)
        if time.monotonic() - start > duration + 30:
            break
    if pending:
        await asyncio.wait(pending, timeout=30)
    elapsed = time.monotonic() - start
    shared.poster_finished()
    return {
        "type": "open",
        "rate": rate,
        "sent": sum(statuses.values()),
        "accepted": statuses.get(202, 0),
        "elapsed": elapsed,
        "achieved_rps": statuses.get(202, 0) / elapsed if elapsed else 0,
        "late": late,
        "statuses": {str(k): v for k, v in statuses.items()},
        "latency": summary(latencies),
        "timeline": timeline if task.get("timeline") else None,
        "errors": errors[:20],
    }


async def run_batch(task: dict[str, Any], shared: Shared) -> dict[str, Any]:
    """``batches`` x ``size`` alerts through ``POST /v1/alerts:batch``, ``concurrency`` at once."""
    host, port = host_port(task["url"])
    headers = alert_headers(task)
    batches, size = int(task["batches"]), int(task["size"])
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(batches):
        queue.put_nowait(i)
    statuses: dict[int, int] = {}
    request_latencies: list[float] = []
    errors: list[str] = []
    await shared.posting_started.wait()
    start = time.monotonic()

    async def worker() -> None:
        conn = HttpConnection(host, port)
        while not queue.empty() and time.monotonic() - start < float(task.get("timeout", 120)):
            queue.get_nowait()
            items = [
                {"idempotency_key": f"bench-{uuid.uuid4().hex}", "alert": EXAMPLE_SEIZURE}
                for _ in range(size)
            ]
            body = json.dumps({"alerts": items}, separators=(",", ":")).encode()
            raw = raw_request("POST", task["url"], "/v1/alerts:batch", headers, body)
            t = time.monotonic()
            try:
                status, response = await conn.request(raw)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(type(exc).__name__)
                await conn.close()
                continue
            done = time.monotonic()
            request_latencies.append(done - t)
            if status != 200:
                errors.append(f"{status}: {response[:200]!r}")
                continue
            for result in json.loads(response)["results"]:
                statuses[result["status"]] = statuses.get(result["status"], 0) + 1
                if result["status"] == 202:
                    record_event(
                        shared,
                        int(result["stream_seq"]),
                        str(result["alert_id"]),
                        done,
                        task.get("name", "batch"),
                        t,
                    )
        await conn.close()

    await asyncio.gather(*(worker() for _ in range(int(task.get("concurrency", 2)))))
    elapsed = time.monotonic() - start
    shared.poster_finished()
    return {
        "type": "batch",
        "alerts": batches * size,
        "accepted": statuses.get(202, 0),
        "statuses": {str(k): v for k, v in statuses.items()},
        "post_seconds": elapsed,
        "batch_latency": summary(request_latencies),
        "errors": errors[:20],
        "started": start - shared.t0,
    }
