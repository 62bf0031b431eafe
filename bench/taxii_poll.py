"""The TAXII poll scenario: a TAXII client's view of a node against the native feed, same run.

Run by ``python -m bench`` (scenario ``taxii``) on the phase-B demo, against ``blo-karamyk-tj``
as its analyst. Two measurements, each beside its native baseline:

1. **Read throughput.** Page the same alerts through ``GET /v1/feed?limit=500`` (native) and
   ``GET /taxii2/.../objects/?limit=1000`` (TAXII), one reader each, one after the other: alerts/s
   both ways, STIX objects/s for TAXII, and the ratio. Both decrypt and verify every alert again;
   TAXII also maps each one to STIX, and reads the row twice (index, then the feed's read).
2. **Delivery latency.** Alerts posted at ``rate``/s on ``blo-karamyk-kg`` while an SSE reader
   (native) and a TAXII poller (``added_after`` = the last page's ``X-TAXII-Date-Added-Last``,
   every ``poll_interval`` s) watch ``blo-karamyk-tj``: 202 → first seen, p50/p99 each way. A
   poller's latency includes on average half its interval, which is reported with it.

Both clients are httpx in this process, so client costs are alike on both sides of each ratio.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx

from bench.loadgen_core import ALERT_BODY, percentile
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.interop.taxii import collection_id

__all__ = ["run"]

TJ = "blo-karamyk-tj"
MIN_ALERTS = 1000


def _ms(values: list[float]) -> dict[str, float | None]:
    return {
        "p50_ms": _round(percentile(values, 50)),
        "p99_ms": _round(percentile(values, 99)),
        "max_ms": _round(max(values) if values else None),
    }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def _alert_of(obj: dict[str, Any]) -> str | None:
    if obj.get("type") != "report":
        return None
    refs = obj.get("external_references") or [{}]
    value = refs[0].get("external_id")
    return str(value) if value else None


async def _feed_page(
    client: httpx.AsyncClient, headers: dict[str, str], cursor: int, limit: int = 500
) -> dict[str, Any]:
    response = await client.get(
        "/v1/feed", params={"cursor": cursor, "limit": limit}, headers=headers
    )
    response.raise_for_status()
    page: dict[str, Any] = response.json()
    return page


async def _feed_count(client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    count, cursor = 0, 0
    while True:
        page = await _feed_page(client, headers, cursor)
        count += len(page["items"])
        if not page["items"]:
            return count
        cursor = page["next_cursor"]


async def _fill(kg: dict[str, Any], tj_client: httpx.AsyncClient, headers: dict[str, str]) -> int:
    """At least MIN_ALERTS alerts in the TJ analyst's feed (earlier scenarios may leave more)."""
    have = await _feed_count(tj_client, headers)
    missing = max(0, MIN_ALERTS - have)
    async with httpx.AsyncClient(base_url=kg["url"], timeout=120) as client:
        for start in range(0, missing, 500):
            items = [
                {"idempotency_key": f"taxii-bench-{uuid.uuid4().hex}", "alert": EXAMPLE_SEIZURE}
                for _ in range(min(500, missing - start))
            ]
            response = await client.post(
                "/v1/alerts:batch",
                json={"alerts": items},
                headers={"Authorization": f"Bearer {kg['terminal_token']}"},
            )
            response.raise_for_status()
    deadline = time.monotonic() + 120
    while have < MIN_ALERTS and time.monotonic() < deadline:
        await asyncio.sleep(1)
        have = await _feed_count(tj_client, headers)
    return have


async def _read_feed(
    client: httpx.AsyncClient, headers: dict[str, str], limit: int
) -> dict[str, Any]:
    alerts, cursor, started = 0, 0, time.perf_counter()
    while alerts < limit:
        page = await _feed_page(client, headers, cursor, min(500, limit - alerts))
        if not page["items"]:
            break
        alerts += len(page["items"])
        cursor = page["next_cursor"]
    seconds = time.perf_counter() - started
    rate = round(alerts / seconds, 1)
    return {"alerts": alerts, "seconds": round(seconds, 3), "alerts_per_s": rate}


async def _read_taxii(
    client: httpx.AsyncClient, headers: dict[str, str], base: str, alerts_wanted: int
) -> dict[str, Any]:
    objects, alerts, next_token = 0, 0, None
    size = 0
    started = time.perf_counter()
    while alerts < alerts_wanted:
        params: dict[str, Any] = {"limit": 1000}
        if next_token:
            params["next"] = next_token
        response = await client.get(f"{base}/objects/", params=params, headers=headers)
        response.raise_for_status()
        size += len(response.content)
        envelope = response.json()
        page = envelope.get("objects", [])
        objects += len(page)
        alerts += sum(1 for o in page if _alert_of(o))
        if not envelope.get("more"):
            break
        next_token = envelope["next"]
    seconds = time.perf_counter() - started
    return {
        "alerts": alerts,
        "objects": objects,
        "bytes": size,
        "seconds": round(seconds, 3),
        "alerts_per_s": round(alerts / seconds, 1),
        "objects_per_s": round(objects / seconds, 1),
    }


async def _latency(
    kg: dict[str, Any],
    tj: dict[str, Any],
    headers: dict[str, str],
    base: str,
    *,
    rate: float,
    seconds: float,
    poll_interval: float,
) -> dict[str, Any]:
    accepted: dict[str, float] = {}
    seen_sse: dict[str, float] = {}
    seen_taxii: dict[str, float] = {}
    polls = 0
    done = asyncio.Event()

    async with httpx.AsyncClient(base_url=tj["url"], timeout=60) as client:
        # Both readers start after what is stored now, as clients that have caught up: the SSE
        # stream after a marker alert's sequence, the poller after the current time (the node's
        # received_at comes from the same clock: everything is on this machine).
        marker = await _post_one(kg)
        await asyncio.sleep(1.0)
        last: str | None = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

        async def sse() -> None:
            async with client.stream(
                "GET", "/v1/feed/stream", params={"cursor": marker}, headers=headers, timeout=None
            ) as stream:
                async for line in stream.aiter_lines():
                    if line.startswith("data: "):
                        alert_id = json.loads(line[6:])["alert_id"]
                        seen_sse.setdefault(alert_id, time.monotonic())
                    if done.is_set():
                        return

        async def poll() -> None:
            nonlocal last, polls
            while not done.is_set():
                next_token: str | None = None
                while True:
                    params: dict[str, Any] = {"limit": 1000}
                    if last:
                        params["added_after"] = last
                    if next_token:
                        params["next"] = next_token
                    response = await client.get(f"{base}/objects/", params=params, headers=headers)
                    polls += 1
                    now = time.monotonic()
                    for obj in response.json().get("objects", []):
                        alert_id = _alert_of(obj)
                        if alert_id:
                            seen_taxii.setdefault(alert_id, now)
                    envelope_more = response.json().get("more")
                    if not envelope_more:
                        last = response.headers.get("X-TAXII-Date-Added-Last", last)
                        break
                    next_token = response.json()["next"]
                await asyncio.sleep(poll_interval)

        async def post() -> None:
            async with httpx.AsyncClient(base_url=kg["url"], timeout=30) as poster:
                interval = 1 / rate
                start = time.monotonic()
                for n in range(int(rate * seconds)):
                    await asyncio.sleep(max(0.0, start + n * interval - time.monotonic()))
                    response = await _post(poster, kg)
                    accepted[response["alert_id"]] = time.monotonic()

        readers = [asyncio.create_task(sse()), asyncio.create_task(poll())]
        await asyncio.sleep(0.5)
        await post()
        for _ in range(75):  # up to 15 s for the last ones
            if set(accepted) <= set(seen_sse) and set(accepted) <= set(seen_taxii):
                break
            await asyncio.sleep(0.2)
        done.set()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)

    sse_lat = [seen_sse[a] - t for a, t in accepted.items() if a in seen_sse]
    taxii_lat = [seen_taxii[a] - t for a, t in accepted.items() if a in seen_taxii]
    return {
        "rate": rate,
        "seconds": seconds,
        "posted": len(accepted),
        "poll_interval_s": poll_interval,
        "polls": polls,
        "sse": _ms(sse_lat) | {"missed": len(accepted) - len(sse_lat)},
        "taxii": _ms(taxii_lat) | {"missed": len(accepted) - len(taxii_lat)},
    }


async def _post(client: httpx.AsyncClient, kg: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(
        "/v1/alerts",
        content=ALERT_BODY,
        headers={
            "Authorization": f"Bearer {kg['terminal_token']}",
            "Idempotency-Key": f"taxii-live-{uuid.uuid4().hex}",
            "Content-Type": "application/json",
        },
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def _post_one(kg: dict[str, Any]) -> int:
    """Post a marker alert; its stream sequence is where the SSE reader starts."""
    async with httpx.AsyncClient(base_url=kg["url"], timeout=30) as client:
        return int((await _post(client, kg))["stream_seq"])


async def run(
    nodes: dict[str, Any],
    kg_id: str,
    *,
    read_alerts: int = 2000,
    rate: float = 5.0,
    seconds: float = 20.0,
    poll_interval: float = 0.5,
) -> dict[str, Any]:
    kg, tj = nodes[kg_id], nodes[TJ]
    headers = {"Authorization": f"Bearer {tj['analyst_token']}"}
    taxii_headers = headers | {"Accept": "application/taxii+json;version=2.1"}
    base = f"/taxii2/{TJ}/collections/{collection_id(TJ, None)}"
    async with httpx.AsyncClient(base_url=tj["url"], timeout=300) as client:
        available = await _fill(kg, client, headers)
        wanted = min(read_alerts, available)
        await _read_feed(client, headers, 50)  # warm both paths (connections, caches)
        await _read_taxii(client, taxii_headers, base, 5)
        feed = await _read_feed(client, headers, wanted)
        taxii = await _read_taxii(client, taxii_headers, base, feed["alerts"])
    latency = await _latency(
        kg, tj, taxii_headers, base, rate=rate, seconds=seconds, poll_interval=poll_interval
    )
    return {
        "read": {
            "feed": feed,
            "taxii": taxii,
            "objects_per_alert": round(taxii["objects"] / max(1, taxii["alerts"]), 1),
            "ratio_alerts_per_s": round(taxii["alerts_per_s"] / feed["alerts_per_s"], 3),
        },
        "latency": latency,
    }
