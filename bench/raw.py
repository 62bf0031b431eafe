"""Baseline (b), the pieces measured raw in the same run: the crypto of one accept (``seal()`` of
``crypto/envelope.py`` for 2 recipients, and the bare pyca calls inside it) and a raw nats-py
JetStream publish of an envelope-sized message, on the same nats-server.

Runs inside the load-generator process (``mode: raw``), alone on the machine: no node is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from typing import Any

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import RecipientKey, seal
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey, hpke_suite
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time, new_alert_id, utc_now


def _timeit(fn: Any, *, seconds: float, max_iterations: int) -> dict[str, float]:
    """Mean seconds per call, from as many calls as fit in ``seconds`` (after 20 warm-up)."""
    for _ in range(20):
        fn()
    count = 0
    start = time.perf_counter()
    cpu0 = time.process_time()
    while count < max_iterations and time.perf_counter() - start < seconds:
        fn()
        count += 1
    wall = time.perf_counter() - start
    return {
        "per_call_us": wall / count * 1e6,
        "cpu_per_call_us": (time.process_time() - cpu0) / count * 1e6,
        "calls": count,
    }


def _sample_seal_inputs(suite: HpkeSuite) -> tuple[Any, ...]:
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
    agencies = ("kg-border-service", "tj-drug-control-agency")
    keys = {a: KemPrivateKey.generate(suite).public_key() for a in agencies}
    signer = SigningKey.generate()
    now = utc_now()
    header = {
        "alert_id": new_alert_id(now, os.urandom),
        "kind": submission.kind,
        "border_pair": submission.border_pair,
        "crossing_point": submission.crossing_point,
        "origin_node": "blo-karamyk-kg",
        "origin_agency": "kg-border-service",
        "created_at": format_time(now),
        "tlp": submission.tlp.value,
        "handling": submission.handling.model_dump(mode="json"),
        "grading": None
        if submission.grading is None
        else submission.grading.model_dump(mode="json"),
        "agreement_ids": ["mou-kg-tj-2026"],
        "supersedes": None,
        "suite": suite.value,
    }
    parts = {"case": canonical_json(submission.case_document())}
    nominal = submission.nominal_document()
    if nominal is not None:
        parts["nominal"] = canonical_json(nominal)
    recipients = [RecipientKey(agency=a, key=keys[a], parts=tuple(parts)) for a in agencies]
    return submission, header, parts, recipients, signer


def measure_crypto(suite: HpkeSuite, seconds: float) -> dict[str, Any]:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    submission, header, parts, recipients, signer = _sample_seal_inputs(suite)
    envelope = seal(header, parts, recipients, signer)
    hpke = hpke_suite(suite)
    public = recipients[0].key._hpke_key()
    key, nonce = os.urandom(32), os.urandom(12)
    case = parts["case"]
    per = seconds / 6
    return {
        "suite": suite.value,
        "envelope_bytes": len(envelope),
        "seal_2_recipients": _timeit(
            lambda: seal(header, parts, recipients, signer), seconds=per * 2, max_iterations=20000
        ),
        # The pyca calls seal() makes, alone: 2 HPKE seals, 2 AES-GCM part encryptions, 1 sign.
        "pyca_hpke_encrypt": _timeit(
            lambda: hpke.encrypt(b"x" * 90, public, info=b"blo-exchange/v1|x|y"),
            seconds=per,
            max_iterations=20000,
        ),
        "pyca_aesgcm_encrypt": _timeit(
            lambda: AESGCM(key).encrypt(nonce, case, b"a" * 32), seconds=per, max_iterations=50000
        ),
        "pyca_ed25519_sign": _timeit(
            lambda: signer.sign(envelope), seconds=per, max_iterations=50000
        ),
        "validate_json": _timeit(
            lambda: ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE),
            seconds=per / 2,
            max_iterations=50000,
        ),
        "canonical_json_envelope": _timeit(
            lambda: canonical_json(submission.case_document()),
            seconds=per / 2,
            max_iterations=50000,
        ),
    }


async def measure_publish(
    nats_url: str, payload_bytes: int, *, concurrency: int, seconds: float
) -> dict[str, Any]:
    """Raw nats-py JetStream publishes (each awaits its ack) to a bench stream configured like
    the alerts stream, on the same nats-server (``sync_interval: always``)."""
    import nats

    from blo_exchange.bus.streams import StreamSpec, stream_config

    client = await nats.connect(nats_url, name="bench-raw")
    js = client.jetstream(timeout=5.0)
    spec = StreamSpec("BENCH_RAW", ("bench.raw.>",))
    await js.add_stream(stream_config(spec, duplicate_window=120.0))
    payload = os.urandom(payload_bytes // 2).hex().encode()

    async def run(workers: int, duration: float) -> dict[str, Any]:
        latencies: list[float] = []
        stop_at = time.monotonic() + duration
        cpu0 = time.process_time()

        async def worker() -> None:
            while time.monotonic() < stop_at and len(latencies) < 200_000:
                t = time.monotonic()
                await js.publish(
                    "bench.raw.x", payload, headers={"Nats-Msg-Id": os.urandom(16).hex()}
                )
                latencies.append(time.monotonic() - t)

        await asyncio.gather(*(worker() for _ in range(workers)))
        latencies.sort()
        return {
            "concurrency": workers,
            "rps": len(latencies) / duration,
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
            "cpu_per_publish_us": (time.process_time() - cpu0) / len(latencies) * 1e6,
        }

    try:
        await run(concurrency, 0.5)  # warm-up
        serial = await run(1, seconds / 3)
        concurrent = await run(concurrency, seconds * 2 / 3)
        hop = await measure_hop(js, payload, rate=100.0, seconds=min(4.0, seconds / 2))
    finally:
        await client.close()
    return {"payload_bytes": len(payload), "serial": serial, "concurrent": concurrent, "hop": hop}


async def measure_hop(js: Any, payload: bytes, *, rate: float, seconds: float) -> dict[str, Any]:
    """The bus floor of delivery latency: publish (awaiting the ack) at ``rate``/s while a durable
    pull consumer (fetch batch 64, as the nodes do) receives; latency = receive - publish start."""
    from nats.errors import TimeoutError as NatsTimeoutError
    from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

    await js.add_consumer(
        "BENCH_RAW",
        ConsumerConfig(
            durable_name="bench-hop",
            deliver_policy=DeliverPolicy.NEW,
            ack_policy=AckPolicy.EXPLICIT,
            filter_subject="bench.raw.hop",
        ),
    )
    sub = await js.pull_subscribe_bind(durable="bench-hop", stream="BENCH_RAW")
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def consume() -> None:
        while not done.is_set() or len(latencies) < len(sent):
            try:
                msgs = await sub.fetch(batch=64, timeout=1.0)
            except NatsTimeoutError:
                if done.is_set():
                    return
                continue
            now = time.monotonic()
            for msg in msgs:
                key = msg.headers["Nats-Msg-Id"] if msg.headers else ""
                if key in sent:
                    latencies.append(now - sent[key])
                await msg.ack()

    consumer = asyncio.create_task(consume())
    start = time.monotonic()
    count = int(rate * seconds)
    for i in range(count):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        key = os.urandom(16).hex()
        sent[key] = time.monotonic()
        await js.publish("bench.raw.hop", payload, headers={"Nats-Msg-Id": key})
    done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(consumer, timeout=5.0)
    latencies.sort()
    n = len(latencies)
    return {
        "rate": rate,
        "n": n,
        "p50_ms": latencies[n // 2] * 1000 if n else None,
        "p99_ms": latencies[min(n - 1, int(n * 0.99))] * 1000 if n else None,
    }


async def measure_commits(database_url: str, *, connections: int, seconds: float) -> dict[str, Any]:
    """Raw asyncpg single-row INSERT transactions (each a WAL fsync, as every accept's three
    transactions are) on the same Postgres, over ``connections`` connections like the node's
    pool (10 + 10 overflow)."""
    import asyncpg

    url = database_url.replace("postgresql+asyncpg://", "postgresql://")
    pool = await asyncpg.create_pool(url, min_size=connections, max_size=connections)
    try:
        await pool.execute("CREATE TABLE IF NOT EXISTS bench_raw_commit (id bigserial, v text)")
        latencies: list[float] = []

        async def run(workers: int, duration: float) -> dict[str, Any]:
            latencies.clear()
            stop_at = time.monotonic() + duration

            async def worker() -> None:
                async with pool.acquire() as conn:
                    while time.monotonic() < stop_at and len(latencies) < 100_000:
                        t = time.monotonic()
                        async with conn.transaction():
                            await conn.execute("INSERT INTO bench_raw_commit (v) VALUES ($1)", "x")
                        latencies.append(time.monotonic() - t)

            await asyncio.gather(*(worker() for _ in range(workers)))
            ordered = sorted(latencies)
            n = len(ordered)
            return {
                "connections": workers,
                "commits_per_s": n / duration,
                "p50_ms": ordered[n // 2] * 1000 if n else None,
                "p99_ms": ordered[min(n - 1, int(n * 0.99))] * 1000 if n else None,
            }

        serial = await run(1, seconds / 2)
        concurrent = await run(connections, seconds / 2)
    finally:
        await pool.close()
    return {"serial": serial, "concurrent": concurrent}


async def run_raw(spec: dict[str, Any]) -> dict[str, Any]:
    crypto = {
        suite: measure_crypto(HpkeSuite(suite), float(spec.get("crypto_seconds", 3)))
        for suite in spec["suites"]
    }
    sizes = [c["envelope_bytes"] for c in crypto.values()]
    publish = await measure_publish(
        spec["nats_url"],
        max(sizes),
        concurrency=int(spec.get("concurrency", 32)),
        seconds=float(spec.get("publish_seconds", 6)),
    )
    commits = await measure_commits(
        spec["database_url"], connections=20, seconds=float(spec.get("db_seconds", 4))
    )
    return {"crypto": crypto, "publish": publish, "db_commit": commits}
