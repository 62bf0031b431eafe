"""Postgres stopped under load: every answer is a 200/202 or a 503 with Retry-After — never a
500, never a dropped connection — and /readyz answers within 100 ms throughout, saying 503 while
the database is down.

Requests are authenticated (the token lookup is the first thing an outage breaks), post alerts on
KG and read TJ's feed; each uses a fresh key and is sent once, so every answer is counted as is.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field

import httpx

from tests.faults.conftest import LONG
from tests.faults.harness import KG, TJ, FaultSystem, alert_body

DURATION = 30.0 if LONG else 9.0
PAUSE = 0.1  # between one worker's requests: 3 posters and 2 readers, up to 50 requests/s
DOWN_FOR = 5.0 if LONG else 2.5
KILL_AT = 2.0


@dataclass
class Observed:
    statuses: Counter[int] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    without_retry_after: int = 0
    not_problem_json: int = 0
    ready_ms: list[float] = field(default_factory=list)
    ready_statuses: Counter[int] = field(default_factory=Counter)
    ready_at: list[tuple[float, str]] = field(default_factory=list)

    def answer(self, response: httpx.Response) -> None:
        self.statuses[response.status_code] += 1
        if response.status_code == 503:
            if "retry-after" not in response.headers:
                self.without_retry_after += 1
            if response.headers.get("content-type") != "application/problem+json":
                self.not_problem_json += 1


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


async def test_postgres_down_under_load_gives_only_503s(fault_system: FaultSystem) -> None:
    await fault_system.heal()
    kg, tj = fault_system.node(KG), fault_system.node(TJ)
    seen = Observed()
    started = time.monotonic()

    def running() -> bool:
        return time.monotonic() - started < DURATION

    async def request(client: httpx.AsyncClient, method: str, url: str, **kw: object) -> None:
        try:
            response = await client.request(method, url, **kw)  # type: ignore[arg-type]
        except httpx.TransportError as exc:
            seen.dropped[type(exc).__name__] += 1
            return
        seen.answer(response)

    async def poster(client: httpx.AsyncClient) -> None:
        while running():
            key = f"outage-{uuid.uuid4().hex}"
            headers = {"Authorization": f"Bearer {kg['terminal_token']}", "Idempotency-Key": key}
            await request(
                client, "POST", kg["url"] + "/v1/alerts", json=alert_body(key), headers=headers
            )
            await asyncio.sleep(PAUSE)

    async def reader(client: httpx.AsyncClient) -> None:
        headers = {"Authorization": f"Bearer {tj['analyst_token']}"}
        while running():
            await request(
                client, "GET", tj["url"] + "/v1/feed", params={"limit": 5}, headers=headers
            )
            await asyncio.sleep(PAUSE)

    def prober(url: str) -> None:
        # In a thread of its own, as an orchestrator's probe is: the load's event loop here
        # must not add its own delays to what is measured.
        with httpx.Client(timeout=10.0) as probes:
            while running():
                sent = time.perf_counter()
                try:
                    response = probes.get(url + "/readyz")
                except httpx.TransportError as exc:
                    seen.dropped["readyz " + type(exc).__name__] += 1
                else:
                    seen.ready_ms.append((time.perf_counter() - sent) * 1000)
                    seen.ready_at.append((round(time.monotonic() - started, 2), url[-5:]))
                    seen.ready_statuses[response.status_code] += 1
                time.sleep(0.05)

    async def outage() -> None:
        await asyncio.sleep(KILL_AT)
        fault_system.postgres.kill()
        await asyncio.sleep(DOWN_FOR)
        await asyncio.to_thread(fault_system.postgres.start)

    async with httpx.AsyncClient(timeout=10.0) as client:
        await asyncio.gather(
            *(poster(client) for _ in range(3)),
            *(reader(client) for _ in range(2)),
            asyncio.to_thread(prober, kg["url"]),
            asyncio.to_thread(prober, tj["url"]),
            outage(),
        )
    report = {
        "scenario": "postgres-outage",
        "statuses": dict(seen.statuses),
        "dropped": dict(seen.dropped),
        "readyz": dict(seen.ready_statuses),
        "readyz_p99_ms": round(p99(seen.ready_ms), 1),
        "readyz_max_ms": round(max(seen.ready_ms), 1),
        "slowest": sorted(zip(seen.ready_ms, seen.ready_at, strict=True), reverse=True)[:8],
    }
    print("\nFAULTS " + json.dumps(report), flush=True)
    assert not seen.dropped, seen.dropped
    assert set(seen.statuses) <= {200, 202, 503}, seen.statuses
    assert seen.statuses[503] > 0, "the outage was not seen"
    assert seen.without_retry_after == 0
    assert seen.not_problem_json == 0
    assert seen.ready_statuses[503] > 0
    assert seen.ready_statuses[200] > 0
    assert p99(seen.ready_ms) < 100.0
