"""The load generator: a separate process, so it never runs on a node's event loop.

    python -m bench.loadgen SPEC.json OUT.json

SPEC is ``{"tasks": [...], "drain": seconds}``; the tasks run concurrently in one asyncio loop.
Listener tasks (``sse``, ``ledger_tail``) connect first; posting tasks (``closed``, ``open``,
``batch``) start once every listener is connected. Listeners stop when they have seen every alert
the posters got a 202 for, or ``drain`` seconds after the last poster finished.

HTTP/1.1 with keep-alive over raw asyncio streams, not httpx: the generator shares the machine's
two cores with the system under test, and a client that spends 1 ms of CPU per request would
measure itself. The generator reports its own CPU use (``cpu_seconds``, ``cpu_share``).

Every loop is bounded by a duration and a count; every address is loopback.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import resource
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from blo_exchange.domain.examples import EXAMPLE_SEIZURE

ALERT_BODY = json.dumps(EXAMPLE_SEIZURE, separators=(",", ":")).encode()
_STREAM_SEQ = b'"stream_seq":'  # in each feed event's data


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    """Latency summary in milliseconds."""
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
    }


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; requests are sent one at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 22
        )

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            body = await self.reader.readexactly(int(lower[at + 17 : end]))
        elif b"transfer-encoding: chunked" in lower:
            body = await self._chunked()
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(data[:-2])


def _request(method: str, url: str, path: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    netloc = urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
    return parts.hostname, int(parts.port or 80)


@dataclass
class Shared:
    """What tasks tell each other: 202s by stream seq and alert id, and when posting ended."""

    posted_seq: dict[int, float] = field(default_factory=dict)  # stream_seq -> t_202
    posted_id: dict[str, float] = field(default_factory=dict)  # alert_id -> t_202
    sent_seq: dict[int, float] = field(default_factory=dict)  # stream_seq -> t_request_sent
    owner_seq: dict[int, str] = field(default_factory=dict)  # stream_seq -> poster task name
    owner_id: dict[str, str] = field(default_factory=dict)  # alert_id -> poster task name
    posters_left: int = 0
    posting_started: asyncio.Event = field(default_factory=asyncio.Event)
    posting_done: asyncio.Event = field(default_factory=asyncio.Event)
    t0: float = 0.0

    def poster_finished(self) -> None:
        self.posters_left -= 1
        if self.posters_left <= 0:
            self.posting_done.set()


def _record_202(
    shared: Shared, body: bytes, now: float, record: bool, owner: str, sent: float
) -> None:
    if record:
        doc = json.loads(body)
        _record(shared, int(doc["stream_seq"]), str(doc["alert_id"]), now, owner, sent)


def _record(shared: Shared, seq: int, alert_id: str, now: float, owner: str, sent: float) -> None:
    shared.sent_seq[seq] = sent
    shared.posted_seq[seq] = now
    shared.posted_id[alert_id] = now
    shared.owner_seq[seq] = owner
    shared.owner_id[alert_id] = owner


def _alert_request(task: dict[str, Any], headers: dict[str, str]) -> bytes:
    key = f"bench-{uuid.uuid4().hex}"
    return _request(
        "POST", task["url"], "/v1/alerts", headers | {"Idempotency-Key": key}, ALERT_BODY
    )


def _alert_headers(task: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {task['token']}", "Content-Type": "application/json"}


async def run_closed(task: dict[str, Any], shared: Shared) -> dict[str, Any]:
    """``concurrency`` connections, each posting back to back, for ``duration`` s (after a
    ``warmup`` whose requests are not counted), at most ``max_requests`` in all."""
    host, port = _host_port(task["url"])
    headers = _alert_headers(task)
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
            raw = _alert_request(task, headers)
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
                _record_202(shared, body, done, record, task.get("name", task["type"]), t)
            elif len(errors) < 20:
                errors.append(f"{status}: {body[:200]!r}")
        await conn.close()

    cpu0 = _cpu()
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
        "cpu_seconds": _cpu() - cpu0,
    }


async def run_open(task: dict[str, Any], shared: Shared) -> dict[str, Any]:
    """Open loop: one alert every 1/``rate`` s for ``duration`` s, over a pool of connections
    (a request never waits for an earlier one unless the whole pool is busy: then it is late,
    and ``late`` counts it)."""
    host, port = _host_port(task["url"])
    headers = _alert_headers(task)
    rate, duration = float(task["rate"]), float(task["duration"])
    record = bool(task.get("record", True))
    pool: asyncio.Queue[HttpConnection] = asyncio.Queue()
    for _ in range(int(task.get("connections", 32))):
        pool.put_nowait(HttpConnection(host, port))
    latencies: list[float] = []
    timeline: list[tuple[float, float]] = []
    statuses: dict[int, int] = {}
    late = 0
    errors: list[str] = []
    await shared.posting_started.wait()
    start = time.monotonic()
    count = int(rate * duration)
    pending: set[asyncio.Task[None]] = set()

    async def one(conn: HttpConnection) -> None:
        raw = _alert_request(task, headers)
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
            _record_202(shared, body, done, record, task.get("name", task["type"]), t)
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
    host, port = _host_port(task["url"])
    headers = _alert_headers(task)
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
            raw = _request("POST", task["url"], "/v1/alerts:batch", headers, body)
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
                    _record(
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


async def run_sse(task: dict[str, Any], shared: Shared, drain: float) -> dict[str, Any]:
    """``subscribers`` SSE streams on ``GET /v1/feed/stream?cursor=``; for each event whose
    stream seq one of the posters got a 202 for, latency = arrival - that 202."""
    host, port = _host_port(task["url"])
    path = f"/v1/feed/stream?cursor={int(task.get('cursor', 0))}"
    raw = _request("GET", task["url"], path, {"Authorization": f"Bearer {task['token']}"})
    n = int(task.get("subscribers", 1))
    arrivals: list[dict[int, float]] = [{} for _ in range(n)]
    connected = 0
    all_connected = asyncio.Event()
    errors: list[str] = []

    async def subscriber(i: int) -> None:
        nonlocal connected
        try:
            reader, writer = await asyncio.open_connection(host, port, limit=1 << 22)
        except OSError as exc:
            errors.append(type(exc).__name__)
            connected += 1
            if connected == n:
                all_connected.set()
            return
        writer.write(raw)
        head = await reader.readuntil(b"\r\n\r\n")
        if int(head[9:12]) != 200:
            errors.append(head[:12].decode())
        connected += 1
        if connected == n:
            all_connected.set()
        chunks = bytearray()
        events = bytearray()
        seen = arrivals[i]
        try:
            while True:
                data = await reader.read(1 << 16)
                if not data:
                    return
                now = time.monotonic()
                chunks += data
                while True:
                    eol = chunks.find(b"\r\n")
                    if eol < 0:
                        break
                    size = int(bytes(chunks[:eol]).split(b";")[0], 16)
                    if len(chunks) < eol + 2 + size + 2:
                        break
                    events += chunks[eol + 2 : eol + 2 + size]
                    del chunks[: eol + 2 + size + 2]
                    if size == 0:
                        return
                while True:
                    end = events.find(b"\n\n")
                    if end < 0:
                        break
                    # The event id is the node's feed position; the stream sequence, which the
                    # 202 named, is in the data. A byte search, not a JSON parse per event.
                    at = events.find(_STREAM_SEQ, 0, end)
                    if at >= 0:
                        digits = at + len(_STREAM_SEQ)
                        stop = digits
                        while events[stop : stop + 1].isdigit():
                            stop += 1
                        seen.setdefault(int(events[digits:stop]), now)
                    del events[: end + 2]
        finally:
            writer.close()

    subs = [asyncio.create_task(subscriber(i)) for i in range(n)]
    try:
        await asyncio.wait_for(all_connected.wait(), timeout=30)
    except TimeoutError:
        errors.append("not all subscribers connected in 30 s")
    shared.posting_started.set()
    await shared.posting_done.wait()
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline:
        expected = set(shared.posted_seq)
        if all(expected <= set(a) for a in arrivals):
            break
        await asyncio.sleep(0.1)
    for sub in subs:
        sub.cancel()
    await asyncio.gather(*subs, return_exceptions=True)
    expected = shared.posted_seq
    per_sub = []
    everything: list[float] = []
    for seen in arrivals:
        lat = [seen[s] - t for s, t in expected.items() if s in seen]
        missing = sum(1 for s in expected if s not in seen)
        everything += lat
        per_sub.append((lat, missing))
    late_limit = float(task.get("behind_after", 1.0))
    behind = sum(1 for lat, missing in per_sub if missing or (lat and max(lat) > late_limit))
    from_post = [a[s] - shared.sent_seq[s] for a in arrivals for s in expected if s in a]
    result: dict[str, Any] = {
        "type": "sse",
        "subscribers": n,
        "expected": len(expected),
        "latency": summary(everything),
        "latency_from_request_sent": summary(from_post),
        "missing": sum(m for _, m in per_sub),
        "behind": behind,
        "behind_rule": f"missed an alert, or got one more than {late_limit:g} s after its 202",
        "worst_subscriber_p99_ms": max(
            ((percentile(lat, 99) or 0) * 1000 for lat, _ in per_sub), default=None
        ),
        "errors": errors[:20],
    }
    owners = sorted(set(shared.owner_seq.values()))
    if len(owners) > 1:
        result["by_poster"] = {}
        for owner in owners:
            mine = {s: t for s, t in expected.items() if shared.owner_seq.get(s) == owner}
            lat = [a[s] - t for a in arrivals for s, t in mine.items() if s in a]
            last = [a[s] for a in arrivals for s in mine if s in a]
            result["by_poster"][owner] = {
                "expected": len(mine),
                "latency": summary(lat),
                "missing": sum(1 for a in arrivals for s in mine if s not in a),
                "last_arrival": max(last) - shared.t0 if last else None,
            }
    if task.get("timeline") and arrivals:
        seen = arrivals[0]
        result["timeline"] = sorted(
            (t - shared.t0, seen[s] - t) for s, t in expected.items() if s in seen
        )
    if task.get("last_arrival"):
        last = max((max(a.values()) for a in arrivals if a), default=None)
        result["last_arrival"] = None if last is None else last - shared.t0
    return result


async def run_ledger_tail(task: dict[str, Any], shared: Shared, drain: float) -> dict[str, Any]:
    """Tail ``GET /v1/ledger/entries?type=alert_shared&cursor=`` every ``interval`` s; lag =
    first poll that returns an alert's entry - its 202."""
    host, port = _host_port(task["url"])
    headers = {"Authorization": f"Bearer {task['token']}"}
    interval = float(task.get("interval", 0.02))
    cursor = int(task.get("cursor", -1))
    conn = HttpConnection(host, port)
    seen: dict[str, float] = {}
    polls = 0
    errors: list[str] = []

    async def poll() -> None:
        nonlocal cursor, polls
        path = f"/v1/ledger/entries?type=alert_shared&cursor={cursor}&limit=1000"
        polls += 1
        status, body = await conn.request(_request("GET", task["url"], path, headers))
        now = time.monotonic()
        if status != 200:
            errors.append(f"{status}: {body[:200]!r}")
            return
        for entry in json.loads(body)["entries"]:
            seen.setdefault(str(entry["alert_id"]), now)
            cursor = max(cursor, int(entry["index"]))

    await shared.posting_started.wait()
    while not shared.posting_done.is_set():
        await poll()
        await asyncio.sleep(interval)
    deadline = time.monotonic() + drain
    while time.monotonic() < deadline and not set(shared.posted_id) <= set(seen):
        await poll()
        await asyncio.sleep(interval)
    await conn.close()
    expected = shared.posted_id
    lat = [seen[a] - t for a, t in expected.items() if a in seen]
    result: dict[str, Any] = {
        "type": "ledger_tail",
        "expected": len(expected),
        "found": len(lat),
        "missing": len(expected) - len(lat),
        "lag": summary(lat),
        "poll_interval_ms": interval * 1000,
        "polls": polls,
        "errors": errors[:20],
    }
    if task.get("last_arrival") and seen:
        result["by_poster"] = {}
        for owner in sorted(set(shared.owner_id.values())):
            mine = {a: t for a, t in expected.items() if shared.owner_id.get(a) == owner}
            lat = [seen[a] - t for a, t in mine.items() if a in seen]
            last = [seen[a] for a in mine if a in seen]
            result["by_poster"][owner] = {
                "expected": len(mine),
                "missing": len(mine) - len(lat),
                "lag": summary(lat),
                "last_arrival": max(last) - shared.t0 if last else None,
            }
    return result


async def run_spec(spec: dict[str, Any]) -> dict[str, Any]:
    shared = Shared(t0=time.monotonic())
    drain = float(spec.get("drain", 10))
    tasks = spec["tasks"]
    posters = [t for t in tasks if t["type"] in ("closed", "open", "batch")]
    shared.posters_left = len(posters)
    listeners = [t for t in tasks if t["type"] == "sse"]
    cpu0, wall0 = _cpu(), time.monotonic()
    coros = []
    for task in tasks:
        if task["type"] == "closed":
            coros.append(run_closed(task, shared))
        elif task["type"] == "open":
            coros.append(run_open(task, shared))
        elif task["type"] == "batch":
            coros.append(run_batch(task, shared))
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
    cpu = _cpu() - cpu0
    return {
        "results": list(results),
        "wall_seconds": wall,
        "cpu_seconds": cpu,
        "cpu_share": cpu / wall if wall else 0.0,
    }


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
