"""The load generator's listening tasks: SSE feed subscribers and a ledger tail."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from bench.loadgen_core import (
    STREAM_SEQ,
    HttpConnection,
    Shared,
    host_port,
    percentile,
    raw_request,
    summary,
)


async def run_sse(task: dict[str, Any], shared: Shared, drain: float) -> dict[str, Any]:
    """``subscribers`` SSE streams on ``GET /v1/feed/stream?cursor=``; for each event whose
    stream seq one of the posters got a 202 for, latency = arrival - that 202."""
    host, port = host_port(task["url"])
    path = f"/v1/feed/stream?cursor={int(task.get('cursor', 0))}"
    # One analyst per subscriber where the spec gives several (``tokens``): a node caps the
    # streams one principal holds open.
    tokens = list(task.get("tokens") or [task["token"]])
    requests = [
        raw_request("GET", task["url"], path, {"Authorization": f"Bearer {token}"})
        for token in tokens
    ]
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
        writer.write(requests[i % len(requests)])
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
                    at = events.find(STREAM_SEQ, 0, end)
                    if at >= 0:
                        digits = at + len(STREAM_SEQ)
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
    host, port = host_port(task["url"])
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
        try:
            status, body = await conn.request(raw_request("GET", task["url"], path, headers))
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            errors.append(type(exc).__name__)  # counted; the next poll reconnects
            await conn.close()
            return
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
