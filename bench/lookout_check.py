"""The lookout scenario: an officer's lookout check and an analyst's search, each beside the read
it is made of, in the same run.

Run by ``python -m bench`` (scenario ``lookout``) on the phase-B demo. ``blo-karamyk-kg`` posts
``alerts`` risk alerts (distinct plates; every tenth names the same person), ``blo-karamyk-tj``
stores and indexes them, then, one request at a time:

1. **Lookout** (``POST /v1/lookout`` as TJ's terminal): ``checks`` hits (a plate of one alert,
   typed with Cyrillic look-alikes: index lookup, verify and open the alert, sign and publish a
   ``hit`` receipt) and ``checks`` misses (index lookup only). Baseline: ``GET /v1/alerts/{id}``
   as TJ's analyst for the same alerts (verify and open one alert).
2. **Search** (``GET /v1/search`` as TJ's analyst): the shared name in Cyrillic, matching
   ``alerts / 10`` alerts, each opened and re-checked. Baseline: ``GET /v1/feed`` of the same
   number of alerts (each opened).

Latencies are p50/p99 in ms of the client (httpx, this process); the ratios compare like with
like. No goal: the figures say what a check costs next to reading the alert it finds.
"""

from __future__ import annotations

import asyncio
import copy
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from bench.loadgen_core import percentile
from blo_exchange.domain.examples import EXAMPLE_RISK

__all__ = ["run"]

TJ = "blo-karamyk-tj"
LOOKALIKE = str.maketrans("ABCEHKMOPTX", "АВСЕНКМОРТХ")  # noqa: RUF001 (the point: Cyrillic)


def _plate(i: int) -> str:
    return f"B{i:05d}KG"


def _risk(i: int) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_RISK)
    body["handling"] = {"scheme": "none"}
    body["case"]["valid_until"] = (datetime.now(UTC) + timedelta(days=7)).strftime(
        "%Y-%m-%dT%H:%M:%S.000Z"
    )
    targets = [{"type": "plate", "value": _plate(i)}]
    if i % 10 == 0:
        targets.append({"type": "person", "value": "RAKHIMOV Alisher"})
    body["case"]["targets"] = targets
    return body


def _ms(values: list[float]) -> dict[str, float | None]:
    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v * 1000, 2)

    return {"p50_ms": rounded(percentile(values, 50)), "p99_ms": rounded(percentile(values, 99))}


async def _post_all(kg: dict[str, Any], count: int) -> list[str]:
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=kg["url"], timeout=120) as client:
        for start in range(0, count, 500):
            items = [
                {"idempotency_key": f"lookout-bench-{uuid.uuid4().hex}", "alert": _risk(i)}
                for i in range(start, min(count, start + 500))
            ]
            response = await client.post(
                "/v1/alerts:batch",
                json={"alerts": items},
                headers={"Authorization": f"Bearer {kg['terminal_token']}"},
            )
            response.raise_for_status()
            ids.extend(r["alert_id"] for r in response.json()["results"])
    return ids


async def _timed(call: Any) -> float:
    started = time.perf_counter()
    response = await call
    response.raise_for_status()
    return time.perf_counter() - started


async def run(
    nodes: dict[str, Any], kg_id: str, *, alerts: int = 1000, checks: int = 100
) -> dict[str, Any]:
    kg, tj = nodes[kg_id], nodes[TJ]
    officer = {"Authorization": f"Bearer {tj['terminal_token']}"}
    analyst = {"Authorization": f"Bearer {tj['analyst_token']}"}
    ids = await _post_all(kg, alerts)
    async with httpx.AsyncClient(base_url=tj["url"], timeout=60) as client:
        last = _plate(alerts - 1).translate(LOOKALIKE)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # stored and indexed: the last alert is found
            found = await client.post(
                "/v1/lookout", json={"field": "plate", "value": last}, headers=officer
            )
            if found.status_code == 200 and found.json()["hits"]:
                break
            await asyncio.sleep(1)
        picks = [(i * 7919) % alerts for i in range(checks)]
        hit, miss, read = [], [], []
        for i in picks:
            value = _plate(i).translate(LOOKALIKE)
            hit.append(
                await _timed(
                    client.post(
                        "/v1/lookout", json={"field": "plate", "value": value}, headers=officer
                    )
                )
            )
            miss.append(
                await _timed(
                    client.post(
                        "/v1/lookout",
                        json={"field": "plate", "value": f"ZZ{i:06d}"},
                        headers=officer,
                    )
                )
            )
            read.append(await _timed(client.get(f"/v1/alerts/{ids[i]}", headers=analyst)))
        matching = alerts // 10
        search, feed = [], []
        for _ in range(max(5, checks // 10)):
            search.append(
                await _timed(
                    client.get(
                        "/v1/search", params={"field": "person", "q": "Рахимов"}, headers=analyst
                    )
                )
            )
            feed.append(
                await _timed(client.get("/v1/feed", params={"limit": matching}, headers=analyst))
            )
    out: dict[str, Any] = {
        "alerts": alerts,
        "checks": checks,
        "lookout_hit": _ms(hit),
        "lookout_miss": _ms(miss),
        "get_alert": _ms(read),
        "search": _ms(search) | {"matching": matching},
        "feed_page": _ms(feed),
    }
    for name, baseline in (("lookout_hit", "get_alert"), ("search", "feed_page")):
        value, base = out[name]["p50_ms"], out[baseline]["p50_ms"]
        out[name]["ratio_p50"] = round(value / base, 2) if value and base else None
    return out
