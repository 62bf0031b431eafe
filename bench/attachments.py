"""The attachment scenario: a file's trip from an officer's upload to the partner's node,
against a raw NATS Object Store put of the same bytes, same run.

Run by ``python -m bench --only attachments`` on the phase-B demo (real node processes, NATS
with per-node nkey users). Per round, ``size`` random bytes shaped as a PDF (accepted as they
are: no image codec in the figure):

- **raw put**: nats-py ``ObjectStore.put`` of the bytes into a plain bucket, as the operator;
- **attachment**: ``POST /v1/uploads`` and 1 MiB ``PATCH`` parts to blo-karamyk-kg, the alert
  naming it (sealed: AES-256-GCM of the file, kept in Postgres, pushed to the bucket), until
  blo-karamyk-tj serves it decrypted (fetched, hash-checked, stored, read back and opened).

MB/s is of the plaintext (10^6 bytes/s). Timings: upload, accept (202), delivery (202 → the file
served at TJ), end to end; the ratio is end-to-end over the raw put.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from typing import Any

import httpx

from bench.harness import KG, TJ
from blo_exchange.bus.connection import connect
from blo_exchange.domain.examples import EXAMPLE_SEIZURE

__all__ = ["run"]

PART = 1024 * 1024
PART_TYPE = "application/offset+octet-stream"


def _pdf(size: int) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size - 9)


async def _raw_put(nats_url: str, data: bytes, rounds: int) -> list[float]:
    bus = await connect(nats_url, name="bench-raw-object-store", timeout=30.0)
    try:
        store = await bus.js.create_object_store("BENCH_RAW")
        seconds = []
        for i in range(rounds):
            started = time.perf_counter()
            await store.put(f"raw-{i}-{uuid.uuid4().hex}", data)
            seconds.append(time.perf_counter() - started)
        return seconds
    finally:
        await bus.close()


async def _one(
    kg: httpx.AsyncClient, tj: httpx.AsyncClient, kg_token: str, tj_token: str, data: bytes
) -> dict[str, float]:
    terminal = {"Authorization": f"Bearer {kg_token}"}
    started = time.perf_counter()
    created = await kg.post(
        "/v1/uploads",
        json={"length": len(data), "filename": "bench.pdf", "content_type": "application/pdf"},
        headers=terminal,
    )
    created.raise_for_status()
    upload_id = created.json()["upload_id"]
    for offset in range(0, len(data), PART):
        response = await kg.patch(
            f"/v1/uploads/{upload_id}",
            content=data[offset : offset + PART],
            headers=terminal | {"Upload-Offset": str(offset), "Content-Type": PART_TYPE},
        )
        response.raise_for_status()
    uploaded = time.perf_counter()
    accepted = await kg.post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE | {"attachments": [upload_id]},
        headers=terminal | {"Idempotency-Key": str(uuid.uuid4())},
    )
    accepted.raise_for_status()
    alert_id = accepted.json()["alert_id"]
    posted = time.perf_counter()
    analyst = {"Authorization": f"Bearer {tj_token}"}
    while True:
        response = await tj.get(f"/v1/alerts/{alert_id}/attachments/1", headers=analyst)
        if response.status_code == 200:
            if response.content != data:
                raise AssertionError("the partner's file differs from the upload")
            break
        if response.status_code not in (404, 409):
            response.raise_for_status()
        if time.perf_counter() - posted > 120:
            raise TimeoutError("the file did not reach the partner in 120 s")
        await asyncio.sleep(0.02)
    done = time.perf_counter()
    return {
        "upload_s": uploaded - started,
        "accept_s": posted - uploaded,
        "delivery_s": done - posted,
        "end_to_end_s": done - started,
    }


def _mbps(size: int, seconds: list[float]) -> float:
    return round(size / statistics.median(seconds) / 1e6, 2)


async def run(
    nodes: dict[str, Any], nats_url: str, *, size: int = 5 * 1024 * 1024, rounds: int = 3
) -> dict[str, Any]:
    data = _pdf(size)
    raw = await _raw_put(nats_url, data, rounds)
    timeout = httpx.Timeout(60.0)
    async with (
        httpx.AsyncClient(base_url=nodes[KG]["url"], timeout=timeout, verify=False) as kg,
        httpx.AsyncClient(base_url=nodes[TJ]["url"], timeout=timeout, verify=False) as tj,
    ):
        trips = [
            await _one(kg, tj, nodes[KG]["terminal_token"], nodes[TJ]["analyst_token"], data)
            for _ in range(rounds)
        ]
    end_to_end = [t["end_to_end_s"] for t in trips]
    result = {
        "size_bytes": size,
        "rounds": rounds,
        "raw_put_mb_s": _mbps(size, raw),
        "upload_mb_s": _mbps(size, [t["upload_s"] for t in trips]),
        "delivery_mb_s": _mbps(size, [t["delivery_s"] for t in trips]),
        "end_to_end_mb_s": _mbps(size, end_to_end),
        "median_s": {key: round(statistics.median(t[key] for t in trips), 3) for key in trips[0]}
        | {"raw_put_s": round(statistics.median(raw), 3)},
    }
    result["ratio_to_raw_put"] = round(result["end_to_end_mb_s"] / result["raw_put_mb_s"], 3)
    return result
