"""``--only e2e``: the whole pipeline's CPU per alert against its composed limit, and the highest
rate it sustains with delivery p99 <= 50 ms (issue 14).

On the phase-B system (4 nodes, the ledger writer, NATS, Postgres as ``make run`` starts them):

1. **Composed limit**, the raw cost of every step one alert takes, measured in this run, in this
   process, CPU time (``time.process_time``) plus, for the steps that talk to a server, the CPU
   the nats-server or Postgres process tree used meanwhile: HTTP (the bare endpoint of phase A,
   server CPU per request), seal for 2 recipients, JetStream publish of the envelope, the two
   accept transactions; at the recipient verify + open, the inbox transaction, sign + publish its
   receipt; at the writer, each entry's verification and build, and one ``COPY`` transaction of
   the alert's entries into a twin of ``ledger_entries``. Not in it: the SSE event's write, the
   idle tickers. Its sum is what one alert costs with nothing around the pieces.
2. **Step search**: open loop at rising offered rates (x1.5 a step, 8 s each, bounded in count
   and time), an SSE subscriber on the recipient node. A step passes when every alert is
   accepted and delivered and delivery p99 (SSE event - 202) is <= 50 ms. At each step: the CPU
   of every process tree from the first POST until the SSE events and all the alerts' ledger
   entries are in, per alert, gross and net of the idle CPU measured before. The first step
   that fails is run once more (``retried``): one stall of another process on a shared machine
   fails a step; the second failure ends the search. Each step also says what the machine was
   doing while it posted (``bench.machine``: CPU busy and steal, disk flushes).

The load generator is another process (``bench.loadgen``); its CPU is reported beside.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg

from bench.harness import KG, Sampler, log, run_loadgen
from bench.machine import MachineSampler
from bench.raw import _sample_seal_inputs
from blo_exchange.crypto.envelope import UnverifiedEnvelope, redact_all, seal
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey
from blo_exchange.crypto.receipt import UnverifiedReceipt, sign_receipt
from blo_exchange.db.ledger_store import ENTRY_COLUMNS
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger import merkle
from blo_exchange.ledger.entries import build_entry

__all__ = ["e2e_run"]

P99_GOAL_MS = 50.0
ACHIEVED_SHARE = 0.97
"""A step is sustained only if the generator achieved this share of the offered rate."""
STEP_SECONDS = 8.0
MAX_STEPS = 7
WARMUP_SECONDS = 5.0
SEARCH_BUDGET_SECONDS = 240.0
TODAY_RPS = 31.0
"""The issue's "today" (delivery achieved 31/s at its first bench): the search's first rate and
its step by default, so that its goal, 4x that, is one of the rates tried (the fourth)."""


def _cpu_per_call(fn: Callable[[], object], calls: int) -> float:
    for _ in range(5):
        fn()
    cpu0 = time.process_time()
    for _ in range(calls):
        fn()
    return (time.process_time() - cpu0) / calls


def crypto_costs(suite: HpkeSuite, calls: int = 150) -> dict[str, float]:
    """Seconds of CPU per call of each crypto step of one alert, in this process."""
    _, header, parts, recipients, signer = _sample_seal_inputs(suite)
    # The recipient's private key: seal to a key we hold, so open() really decrypts.
    tj_key = KemPrivateKey.generate(suite)
    recipients[1] = type(recipients[1])(
        agency=recipients[1].agency, key=tj_key.public_key(), parts=recipients[1].parts
    )
    raw = seal(header, parts, recipients, signer)
    keys = {signer.key_id: signer.verify_key()}
    pair, kind, agency = header["border_pair"], header["kind"], recipients[1].agency

    def verify_open() -> None:
        verified = UnverifiedEnvelope.parse(raw).verify(
            keys, subject_border_pair=pair, subject_kind=kind, recipient_agency=agency
        )
        verified.open(agency, {tj_key.key_id: tj_key})

    body = {
        "type": "alert_delivered",
        "node": "blo-karamyk-tj",
        "agency": agency,
        "border_pair": pair,
        "alert_id": header["alert_id"],
        "receipt_id": str(uuid.uuid4()),
        "envelope_sha256": "0" * 64,
        "at": "2026-11-28T06:40:00.000Z",
    }
    receipt = sign_receipt(body, signer)

    def shared_entry() -> None:
        verified = UnverifiedEnvelope.parse(raw).verify_signature_only(
            keys, subject_border_pair=pair, subject_kind=kind
        )
        build_entry(
            event_id=f"alert_shared:{verified.alert_id}",
            type="alert_shared",
            occurred_at=utc_now(),
            alert_id=verified.alert_id,
            record=redact_all(raw),
        )

    def receipt_entry() -> None:
        verified = UnverifiedReceipt.parse(receipt).verify(keys)
        build_entry(
            event_id=f"receipt:x:{body['receipt_id']}",
            type="alert_delivered",
            occurred_at=utc_now(),
            detail=dict(verified.body),
            record=receipt,
        )

    return {
        "seal_2_recipients": _cpu_per_call(lambda: seal(header, parts, recipients, signer), calls),
        "verify_open": _cpu_per_call(verify_open, calls),
        "receipt_sign": _cpu_per_call(lambda: sign_receipt(body, signer), calls),
        "writer_shared_entry": _cpu_per_call(shared_entry, calls),
        "writer_receipt_entry": _cpu_per_call(receipt_entry, calls),
        "envelope_bytes": float(len(raw)),
    }


async def server_costs(
    nats_url: str, database_url: str, pids: dict[str, int], envelope_bytes: int, n: int = 300
) -> dict[str, float]:
    """CPU seconds (this process + the server's tree) per JetStream publish, per one-row
    transaction, and per COPY transaction of 3 ledger-sized rows into a twin table."""
    import nats

    from bench.ledger_log import RECORD

    out: dict[str, float] = {}

    async def measure(name: str, server: str, step: Callable[[int], Awaitable[object]]) -> None:
        for i in range(5):
            await step(-1 - i)
        cpu0 = time.process_time()
        with Sampler({server: pids[server]}, interval=60.0) as sampler:
            for i in range(n):
                await step(i)
        own = time.process_time() - cpu0
        out[name] = (own + sampler.cpu_share(server) * sampler.wall) / n

    client = await nats.connect(nats_url, name="bench-e2e-raw")
    try:
        js = client.jetstream(timeout=5.0)
        from blo_exchange.bus.streams import StreamSpec, stream_config

        await js.add_stream(
            stream_config(StreamSpec("BENCH_E2E", ("bench.e2e.>",)), duplicate_window=120.0)
        )
        payload = os.urandom(envelope_bytes // 2).hex().encode()

        async def publish(i: int) -> None:
            await js.publish("bench.e2e.x", payload, headers={"Nats-Msg-Id": uuid.uuid4().hex})

        await measure("publish", "nats", publish)
    finally:
        await client.close()

    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute("CREATE TABLE bench_e2e_commit (id bigserial, v text)")
        await conn.execute(
            "CREATE TABLE bench_e2e_ledger (LIKE ledger_entries INCLUDING DEFAULTS INCLUDING "
            "INDEXES)"
        )

        async def commit(i: int) -> None:
            async with conn.transaction():
                await conn.execute("INSERT INTO bench_e2e_commit (v) VALUES ($1)", "x" * 64)

        rows = [0]

        async def append(i: int) -> None:
            records = []
            for _ in range(3):
                rows[0] += 1
                leaf = RECORD
                records.append(
                    (
                        rows[0],
                        f"e2e:{rows[0]}",
                        "alert_shared",
                        str(uuid.uuid4()),
                        "blo-karamyk-kg",
                        "kg-border-service",
                        ["kg-border-service"],
                        "KG-TJ",
                        "seizure",
                        utc_now(),
                        leaf,
                        merkle.leaf_hash(leaf),
                    )
                )
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "bench_e2e_ledger", records=records, columns=ENTRY_COLUMNS
                )

        await measure("db_commit", "postgres", commit)
        await measure("ledger_append_3_rows", "postgres", append)
    finally:
        await conn.close()
    return out


def compose(
    crypto: dict[str, float],
    servers: dict[str, float],
    http_s: float | None,
    receipts_per_alert: int,
) -> dict[str, Any]:
    """CPU ms per alert of each step and their sum (``receipts_per_alert`` from the ledger)."""
    steps = {
        "http_bare": http_s or 0.0,
        "seal": crypto["seal_2_recipients"],
        "publish_envelope": servers["publish"],
        "accept_transactions_x2": 2 * servers["db_commit"],
        "verify_open": crypto["verify_open"],
        "inbox_transaction": servers["db_commit"],
        "receipts_sign_publish": receipts_per_alert * (crypto["receipt_sign"] + servers["publish"]),
        "writer_entries": crypto["writer_shared_entry"]
        + receipts_per_alert * crypto["writer_receipt_entry"],
        "ledger_append": servers["ledger_append_3_rows"] * (1 + receipts_per_alert) / 3,
    }
    ms = {k: v * 1000 for k, v in steps.items()}
    return {"steps_ms": ms, "total_ms": sum(ms.values()), "http_measured": http_s is not None}


async def _ledger_entries_for(database_url: str, alert_ids: list[str]) -> dict[str, int]:
    """Entry counts by type for ``alert_ids`` (read straight from the database, once)."""
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        rows = await conn.fetch(
            "SELECT type, count(*) FROM ledger_entries WHERE alert_id = any($1::text[]) "
            "GROUP BY type",
            alert_ids,
        )
    finally:
        await conn.close()
    return {str(r[0]): int(r[1]) for r in rows}


async def _step(
    rate: float,
    *,
    seconds: float = STEP_SECONDS,
    post: dict[str, Any],
    sse: dict[str, Any],
    cursor: Callable[[], Awaitable[int]],
    pids: dict[str, int],
    database_url: str,
    work: Path,
    entries_per_alert: int | None,
) -> dict[str, Any]:
    start_at = await cursor()
    spec = {
        "tasks": [
            {**sse, "subscribers": 1, "cursor": start_at},
            {
                **post,
                "type": "open",
                "rate": rate,
                "duration": seconds,
                "name": "alerts",
                "timeline": True,
            },
        ],
        "drain": 10,
        "timeout": seconds + 120,
        "posted_ids_out": True,
    }
    with Sampler(pids, interval=1.0) as sampler:
        with MachineSampler() as machine:  # while the alerts are posted (the window goes on)
            out = await run_loadgen(spec, work / "loadgen", f"e2e-{rate:.1f}")
        ids = out.get("posted_ids") or []
        # Keep counting until every alert's ledger entries are in (or 20 s).
        deadline = time.monotonic() + 20
        counts: dict[str, int] = {}
        while True:
            counts = await _ledger_entries_for(database_url, ids)
            total = sum(counts.values())
            if entries_per_alert is not None and total >= entries_per_alert * len(ids):
                break
            if entries_per_alert is None and counts.get("alert_shared", 0) >= len(ids):
                await asyncio.sleep(1.0)  # the receipts a moment behind
                counts = await _ledger_entries_for(database_url, ids)
                break
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
    sse_r = next(r for r in out["results"] if r["type"] == "sse")
    open_r = next(r for r in out["results"] if r["type"] == "open")
    cpu = {p: sampler.cpu_share(p) * sampler.wall for p in pids}
    accepted = open_r["accepted"]
    return {
        "offered_rps": rate,
        "achieved_rps": open_r["achieved_rps"],
        "accepted": accepted,
        "sent": open_r["sent"],
        "accept_latency": open_r["latency"],
        "delivery": sse_r["latency"],
        "delivered_missing": sse_r["missing"],
        "ledger_entries": counts,
        "window_seconds": sampler.wall,
        "cpu_seconds": cpu,
        "loadgen_cpu_seconds": out["cpu_seconds"],
        "loadgen_cpu_cores": out["cpu_share"],
        "slow_202s_by_second": slow_by_second(open_r.get("timeline") or []),
        "machine_while_posting": machine.summary(),
    }


def machine_text(machine: dict[str, Any]) -> str:
    """One line of :class:`MachineSampler`'s summary: what a missed step ran on."""
    if "cpu_busy_share" not in machine:
        return "not sampled"
    text = (
        f"CPUs {machine['cpu_busy_share'] * 100:.0f}% busy (busiest second "
        f"{machine['cpu_busiest_second_share'] * 100:.0f}%, steal "
        f"{machine['cpu_steal_share'] * 100:.1f}%)"
    )
    disk = machine.get("disk") or {}
    if disk.get("flushes"):
        text += (
            f", disk flush {disk['flush_ms_mean']:.2f} ms mean, slowest 0.1 s "
            f"{disk['flush_ms_worst_tick']:.1f} ms ({disk['flushes']} flushes)"
        )
    return text


def slow_by_second(timeline: list[list[float]], slow_s: float = 0.05) -> dict[str, Any]:
    """Where in a step the 202s slower than ``slow_s`` were: how many were sent in each second
    of the step, and the slowest of each such second (ms). It tells a step that started cold
    (slow ones in its first seconds) from one that stalled in its middle."""
    count: dict[int, int] = {}
    worst: dict[int, float] = {}
    for sent_at, latency in timeline:
        if latency > slow_s:
            second = int(sent_at)
            count[second] = count.get(second, 0) + 1
            worst[second] = max(worst.get(second, 0.0), latency * 1000)
    return {
        "slow_ms": slow_s * 1000,
        "count": {str(k): count[k] for k in sorted(count)},
        "worst_ms": {str(k): round(worst[k], 1) for k in sorted(worst)},
    }


async def e2e_run(
    *,
    creds: dict[str, Any],
    pids: dict[str, int],
    post: dict[str, Any],
    sse: dict[str, Any],
    cursor: Callable[[], Awaitable[int]],
    work: Path,
    start_rate: float,
    bare_http_s: float | None,
    suite: HpkeSuite = HpkeSuite.MLKEM768_X25519,
    max_steps: int = MAX_STEPS,
) -> dict[str, Any]:
    log("e2e: raw step costs (crypto in-process; publish, commits, COPY with server CPU)")
    crypto = await asyncio.to_thread(crypto_costs, suite)
    servers = await server_costs(
        creds["nats_url"], creds["database_url"], pids, int(crypto["envelope_bytes"])
    )
    log("e2e: idle CPU of the system, 4 s")
    with Sampler(pids, interval=1.0) as idle:
        await asyncio.sleep(4.0)
    idle_cores = sum(idle.cpu_share(p) for p in pids)

    # The search asks what a running system sustains. Its first step, on nodes that had served
    # nothing yet, failed on the 202s of its first second in both whole runs of stop 30 (its
    # own retry passed), and took the search's one retry with it. So it warms the system at
    # the start rate first: reported, not counted.
    log(f"e2e: warm-up, {WARMUP_SECONDS:.0f} s at {start_rate:.1f}/s (not counted)")
    step_at = functools.partial(
        _step,
        post=post,
        sse=sse,
        cursor=cursor,
        pids=pids,
        database_url=creds["database_url"],
        work=work,
    )
    warmup = await step_at(start_rate, seconds=WARMUP_SECONDS, entries_per_alert=None)
    steps: list[dict[str, Any]] = []
    rate, started = start_rate, time.monotonic()
    entries_per_alert: int | None = None
    if warmup["accepted"]:
        entries_per_alert = round(sum(warmup["ledger_entries"].values()) / warmup["accepted"])
    retried = False
    while len(steps) < max_steps and time.monotonic() - started < SEARCH_BUDGET_SECONDS:
        log(f"e2e: step at {rate:.1f}/s offered")
        step = await step_at(rate, entries_per_alert=entries_per_alert)
        accepted = step["accepted"] or 1
        if entries_per_alert is None and step["accepted"]:
            entries_per_alert = round(sum(step["ledger_entries"].values()) / step["accepted"])
        gross = sum(step["cpu_seconds"].values())
        step["cpu_ms_per_alert"] = gross / accepted * 1000
        step["cpu_ms_per_alert_net_of_idle"] = (
            (gross - idle_cores * step["window_seconds"]) / accepted * 1000
        )
        step["cpu_ms_per_alert_by_process"] = {
            p: c / accepted * 1000 for p, c in step["cpu_seconds"].items()
        }
        p99 = step["delivery"]["p99_ms"]
        accept_p99 = step["accept_latency"]["p99_ms"]
        # Sustained: the system kept pace, not only delivery. Delivery is timed from the 202, so
        # a saturated origin, whose 202s come late (the partner's event can arrive before
        # them), would otherwise pass with a small or negative p99: the 202s must keep the
        # same bound and the offered rate be achieved.
        step["passed"] = bool(
            step["accepted"] == step["sent"]
            and step["sent"] >= int(rate * STEP_SECONDS) * 0.98
            and step["achieved_rps"] >= rate * ACHIEVED_SHARE
            and step["delivered_missing"] == 0
            and p99 is not None
            and p99 <= P99_GOAL_MS
            and accept_p99 is not None
            and accept_p99 <= P99_GOAL_MS
        )
        steps.append(step)
        log(
            f"e2e: {rate:.1f}/s -> {step['achieved_rps']:.1f}/s achieved, delivery p99 {p99} ms,"
            f" 202 p99 {accept_p99} ms, {step['cpu_ms_per_alert']:.1f} ms CPU/alert,"
            f" passed={step['passed']}; machine: {machine_text(step['machine_while_posting'])}"
        )
        if not step["passed"]:
            if retried or len(steps) >= max_steps:
                break
            # Once per search, a failed rate is tried again before the search ends: on a shared
            # machine one stall of another process fails a step (both runs are in the results).
            step["retried"] = retried = True
            continue
        rate += start_rate

    passed = [s for s in steps if s["passed"]]
    best = passed[-1] if passed else None
    receipts = max(0, (entries_per_alert or 3) - 1)
    composed = compose(crypto, servers, bare_http_s, receipts)
    measured = (best or steps[0])["cpu_ms_per_alert"] if steps else None
    return {
        "raw_cpu_seconds": {"crypto": crypto, "servers": servers},
        "idle_cpu_cores": idle_cores,
        "warmup": {
            key: warmup[key]
            for key in ("offered_rps", "achieved_rps", "accept_latency", "delivery")
        }
        | {"slow_202s_by_second": warmup["slow_202s_by_second"]},
        "entries_per_alert": entries_per_alert,
        "composed": composed,
        "steps": steps,
        "max_sustained_rps": best["achieved_rps"] if best else None,
        "max_sustained_offered_rps": best["offered_rps"] if best else None,
        "cpu_ms_per_alert": measured,
        "cpu_ms_per_alert_at": (best or steps[0])["offered_rps"] if steps else None,
        "ratio_to_composed": measured / composed["total_ms"] if measured else None,
        "goal": "CPU per alert <= 2x composed; sustained rate (p99 <= 50 ms) >= 4x today's",
        "origin_node": KG,
    }
