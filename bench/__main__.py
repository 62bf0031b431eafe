"""``make bench``: start our own servers, run every scenario, print a table, write results.json.

    python -m bench [--soak-seconds 60] [--measure-seconds 8] [--only accept,profile,...]
                    [--out bench/results.json]

Phase A (accept): NATS + Postgres + one node (blo-karamyk-kg) and nothing else, so the accept
path is measured alone against its baselines, all in this run: (a) a bare FastAPI endpoint
validating the same model, served the same way; (b) the composed limit: bare cost per request +
seal() of the envelope for 2 recipients + a raw nats-py JetStream publish. At 1 and 2 uvicorn
workers (``uvicorn --workers`` and ``SO_REUSEPORT``), for both HPKE suites. Then a profile.

Phase B (system): fresh NATS + Postgres + the demo as ``make run`` starts it (4 nodes, ledger
writer): delivery latency, ledger lag, fan-out, burst, soak.

The load generator is another process (``bench.loadgen``); the machine has 2 cores, shared by the
generator, the nodes, NATS and Postgres, and the report says how much CPU each used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import platform
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench.harness import NODE_OVERRIDES, REPO, Sampler, System, run_loadgen, serve, wait_ready
from bench.loadgen import percentile

SUITES = ("MLKEM768-X25519/HKDF-SHA256/AES-256-GCM", "X25519/HKDF-SHA256/AES-256-GCM")
SHORT = {SUITES[0]: "MLKEM768-X25519", SUITES[1]: "X25519"}
WORKER_CONFIGS = (
    ("w1", 1, "uvicorn"),
    ("w2-uvicorn", 2, "uvicorn"),
    ("w2-reuseport", 2, "reuseport"),
)
ALL = ("accept", "profile", "delivery", "ledger", "fanout", "burst", "taxii", "soak")
KG, TJ, FOTEHOBOD = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


# --- phase A -------------------------------------------------------------------------------------


async def accept_phase(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    system = System(work / "accept")
    await system.start()
    logs = work / "accept" / "logs"
    creds = system.credentials
    token = creds["nodes"][KG]["terminal_token"]
    measure = args.measure_seconds
    try:
        log("raw pieces: seal() per suite, raw JetStream publish, raw bus hop")
        raw = await run_loadgen(
            {
                "mode": "raw",
                "suites": list(SUITES),
                "nats_url": creds["nats_url"],
                "database_url": creds["database_url"],
                "crypto_seconds": 3,
                "publish_seconds": 6,
            },
            work / "loadgen",
            "raw",
        )
        results["raw"] = raw
        accept: dict[str, Any] = {}
        configs = WORKER_CONFIGS if "accept" in args.only else WORKER_CONFIGS[:1]
        suites = SUITES if "accept" in args.only else SUITES[:1]
        for label, workers, mode in configs:
            entry: dict[str, Any] = {"workers": workers, "mode": mode}
            log(f"accept {label}: bare endpoint")
            entry["bare"] = await _closed_run(
                f"bare-{label}",
                serve(
                    f"bare-{label}",
                    app="bare",
                    env=system.node_env(KG),
                    logs=logs,
                    workers=workers,
                    mode=mode,
                ),
                token,
                measure,
                work,
            )
            entry["suites"] = {}
            for suite in suites:
                log(f"accept {label}: node, {SHORT[suite]}")
                served = serve(
                    f"node-{label}-{SHORT[suite]}",
                    app="node",
                    env=system.node_env(KG, BLO_SUITE=suite),
                    logs=logs,
                    workers=workers,
                    mode=mode,
                )
                entry["suites"][suite] = await _closed_run(
                    f"node-{label}-{SHORT[suite]}", served, token, measure, work
                )
            accept[label] = entry
        _compose(accept, raw)
        results["accept"] = accept
        results["max_accept_rps"] = accept["w1"]["suites"][SUITES[0]]["rps"]
        if "profile" in args.only:
            await profile_run(system, token, measure, work, results)
    finally:
        system.stop()


async def _closed_run(
    name: str, served: Any, token: str, seconds: float, work: Path
) -> dict[str, Any]:
    try:
        await wait_ready(served.url, served.process)
        with Sampler({"server": served.process.pid}) as sampler:
            out = await run_loadgen(
                {
                    "tasks": [
                        {
                            "type": "closed",
                            "url": served.url,
                            "token": token,
                            "concurrency": 32,
                            "warmup": 2,
                            "duration": seconds,
                        }
                    ]
                },
                work / "loadgen",
                name,
            )
    finally:
        served.stop()
    closed = out["results"][0]
    return {
        "rps": closed["rps"],
        "accepted": closed["accepted"],
        "statuses": closed["statuses"],
        "latency": closed["latency"],
        "errors": closed["errors"],
        "server_cpu_cores": sampler.cpu_share("server"),
        "server_max_rss_mb": sampler.max_rss.get("server"),
        "loadgen_cpu_cores": out["cpu_share"],
    }


def _compose(accept: dict[str, Any], raw: dict[str, Any]) -> None:
    """Composed limit (b): per request, the bare endpoint's cost at these workers + the raw
    crypto and publish costs divided by the parallelism the bare endpoint showed (its rps at N
    workers over its rps at 1): what the pieces alone would allow."""
    bare1 = accept["w1"]["bare"]["rps"]
    publish_cost = 1.0 / raw["publish"]["concurrent"]["rps"]
    for entry in accept.values():
        bare = entry["bare"]["rps"]
        parallelism = max(1.0, bare / bare1) if bare1 else 1.0
        for suite, run in entry["suites"].items():
            seal_cost = raw["crypto"][suite]["seal_2_recipients"]["per_call_us"] / 1e6
            cost = 1.0 / bare + (seal_cost + publish_cost) / parallelism
            limit = 1.0 / cost
            run["baseline_bare_rps"] = bare
            run["ratio_to_bare"] = run["rps"] / bare if bare else None
            run["composed_limit_rps"] = limit
            run["composed"] = {
                "bare_ms": 1000 / bare,
                "seal_ms": seal_cost * 1000,
                "publish_ms": publish_cost * 1000,
                "parallelism": parallelism,
            }
            run["ratio_to_composed"] = run["rps"] / limit
            run["per_request_ms_node"] = 1000 / run["rps"] if run["rps"] else None


async def profile_run(
    system: System, token: str, seconds: float, work: Path, results: dict[str, Any]
) -> None:
    from bench.profile_report import bucket_session, render_text

    log("profile: node (1 worker, default suite) under pyinstrument")
    out_dir = REPO / "bench" / "profile"
    out_dir.mkdir(exist_ok=True)
    session_path = out_dir / "accept.pyisession"
    served = serve(
        "node-profiled",
        app="node",
        env=system.node_env(KG),
        logs=work / "accept" / "logs",
        profile=session_path,
    )
    try:
        await wait_ready(served.url, served.process)
        out = await run_loadgen(
            {
                "tasks": [
                    {
                        "type": "closed",
                        "url": served.url,
                        "token": token,
                        "concurrency": 32,
                        "warmup": 1,
                        "duration": seconds,
                    }
                ]
            },
            work / "loadgen",
            "profile",
        )
    finally:
        served.stop(signal.SIGINT)  # uvicorn returns on SIGINT, and the profile is saved
    report = bucket_session(session_path)
    render_text(session_path, out_dir / "accept")
    report["rps_while_profiled"] = out["results"][0]["rps"]
    report["files"] = [str(out_dir / f"accept.{ext}") for ext in ("pyisession", "txt", "html")]
    results["profile"] = report


# --- phase B -------------------------------------------------------------------------------------


async def system_phase(args: argparse.Namespace, work: Path, results: dict[str, Any]) -> None:
    system = System(work / "system")
    await system.start()
    demo = system.demo_processes()
    creds = system.credentials
    nodes = creds["nodes"]
    max_rate = float(results.get("max_accept_rps") or 50.0)
    half = max(1.0, max_rate / 2)
    try:
        demo.start()
        await demo.wait_ready()
        pids = {name: p.pid for name, p in demo.processes.items()}
        pids |= {"nats": system.nats.pid or 0, "postgres": system.postgres.pid or 0}
        kg, tj, fot = nodes[KG], nodes[TJ], nodes[FOTEHOBOD]
        post = {"url": kg["url"], "token": kg["terminal_token"]}
        sse = {"type": "sse", "url": tj["url"], "token": tj["analyst_token"]}
        tail = {"type": "ledger_tail", "url": fot["url"], "token": creds["auditor_token"]}
        memory: dict[str, float] = {}
        system_results: dict[str, Any] = {"max_accept_rps_phase_a": max_rate}

        async def scenario(name: str, spec: dict[str, Any], interval: float = 0.5) -> Any:
            cursor = await _current_seq(kg, post, sse)
            for task in spec["tasks"]:
                if task["type"] == "sse":
                    task["cursor"] = cursor
            with Sampler(pids, interval=interval) as sampler:
                out = await run_loadgen(spec, work / "loadgen", name)
            for proc, rss in sampler.max_rss.items():
                memory[proc] = max(memory.get(proc, 0.0), rss)
            out["cpu_cores"] = {p: round(sampler.cpu_share(p), 3) for p in pids}
            return out, sampler

        if "delivery" in args.only:
            with _guard(system_results, "delivery"):
                log(f"delivery latency: open loop at {half:.1f}/s (half of {max_rate:.1f})")
                out, _ = await scenario(
                    "delivery",
                    {
                        "tasks": [
                            {**sse, "subscribers": 1},
                            {
                                **post,
                                "type": "open",
                                "rate": half,
                                "duration": 20,
                                "name": "alerts",
                            },
                            tail,
                        ],
                        "drain": 15,
                    },
                )
                system_results["delivery"] = _pick(out)
        if "ledger" in args.only:
            with _guard(system_results, "ledger"):
                log("ledger lag: closed loop, concurrency 32 (max accept rate)")
                out, _ = await scenario(
                    "ledger",
                    {
                        "tasks": [
                            {
                                **post,
                                "type": "closed",
                                "concurrency": 32,
                                "warmup": 0,
                                "duration": 15,
                                "record": True,
                                "name": "alerts",
                            },
                            {**tail, "last_arrival": True},
                        ],
                        "drain": 40,
                    },
                )
                system_results["ledger"] = _pick(out)
        if "fanout" in args.only:
            with _guard(system_results, "fanout"):
                log("fan-out: 100 SSE subscribers on blo-karamyk-tj, 100 alerts/s for 15 s")
                out, _ = await scenario(
                    "fanout",
                    {
                        "tasks": [
                            {**sse, "subscribers": 100, "behind_after": 1.0},
                            {**post, "type": "open", "rate": 100, "duration": 15, "name": "alerts"},
                        ],
                        "drain": 20,
                        "timeout": 200,
                    },
                )
                system_results["fanout"] = _pick(out)
        if "burst" in args.only:
            with _guard(system_results, "burst"):
                log("burst: 10,000 alerts in batches of 500, live alerts at 5/s alongside")
                out, _ = await scenario(
                    "burst",
                    {
                        "tasks": [
                            {**sse, "subscribers": 1, "last_arrival": True},
                            {
                                **post,
                                "type": "batch",
                                "batches": 20,
                                "size": 500,
                                "concurrency": 2,
                                "timeout": 90,
                                "name": "burst",
                            },
                            {**post, "type": "open", "rate": 5, "duration": 60, "name": "live"},
                            {**tail, "last_arrival": True},
                        ],
                        "drain": 45,
                        "timeout": 300,
                    },
                )
                system_results["burst"] = _pick(out)
        if "taxii" in args.only:
            with _guard(system_results, "taxii"):
                log("taxii: feed vs TAXII read throughput on blo-karamyk-tj; SSE vs TAXII poll")
                from bench.taxii_poll import run as taxii_run

                system_results["taxii"] = await taxii_run(nodes, KG)
        if "soak" in args.only:
            with _guard(system_results, "soak"):
                log(f"soak: {args.soak_seconds:.0f} s at {half:.1f}/s")
                out, sampler = await scenario(
                    "soak",
                    {
                        "tasks": [
                            {**sse, "subscribers": 1, "timeline": True},
                            {
                                **post,
                                "type": "open",
                                "rate": half,
                                "duration": args.soak_seconds,
                                "name": "alerts",
                            },
                        ],
                        "drain": 15,
                        "timeout": args.soak_seconds + 300,
                    },
                    interval=1.0,
                )
                system_results["soak"] = _soak(out, sampler, args.soak_seconds)
        system_results["max_rss_mb"] = memory
        results["system"] = system_results
    finally:
        demo.stop()
        system.stop()


@contextlib.contextmanager
def _guard(results: dict[str, Any], name: str) -> Iterator[None]:
    """A scenario that fails (a timeout, a node that died) is recorded, and the rest still run."""
    try:
        yield
    except Exception as exc:
        log(f"{name} failed: {exc!r}")
        results[name] = {"error": repr(exc)[:2000]}


async def _current_seq(node: dict[str, Any], post: dict[str, Any], sse: dict[str, Any]) -> int:
    """Post one marker alert on ``node``: its feed position on the SSE node is where new
    subscribers start (not at 0, which would replay, and decrypt, everything earlier scenarios
    posted). Positions are the SSE node's own, so the marker is looked up in its feed."""
    import asyncio
    import time
    import uuid

    import httpx

    from bench.loadgen import ALERT_BODY

    async with httpx.AsyncClient(timeout=30) as client:
        response = await client.post(
            node["url"] + "/v1/alerts",
            content=ALERT_BODY,
            headers={
                "Authorization": f"Bearer {post['token']}",
                "Idempotency-Key": f"marker-{uuid.uuid4().hex}",
                "Content-Type": "application/json",
            },
        )
        response.raise_for_status()
        marker = response.json()["alert_id"]
        reader = {"Authorization": f"Bearer {sse['token']}"}
        cursor, deadline = 0, time.monotonic() + 30
        while time.monotonic() < deadline:
            page = await client.get(
                sse["url"] + "/v1/feed", params={"cursor": cursor, "limit": 500}, headers=reader
            )
            page.raise_for_status()
            body = page.json()
            for item in body["items"]:
                if item["alert_id"] == marker:
                    return int(item["feed_seq"])
            if not body["items"]:
                await asyncio.sleep(0.05)
            cursor = body["next_cursor"]
        raise RuntimeError("the marker alert never reached the SSE node's feed")


def _pick(out: dict[str, Any]) -> dict[str, Any]:
    picked: dict[str, Any] = {
        r["type"] + ("-" + r["name"] if r.get("name") else ""): r for r in out["results"]
    }
    for r in picked.values():
        r.pop("timeline", None)
    picked["loadgen_cpu_cores"] = out["cpu_share"]
    picked["cpu_cores"] = out["cpu_cores"]
    return picked


def _soak(out: dict[str, Any], sampler: Sampler, seconds: float) -> dict[str, Any]:
    sse = next(r for r in out["results"] if r["type"] == "sse")
    timeline = sse.get("timeline") or []
    thirds = (
        [
            [lat for t, lat in timeline if lo <= t - timeline[0][0] < hi]
            for lo, hi in ((0, seconds / 3), (seconds / 3, 2 * seconds / 3), (2 * seconds / 3, 1e9))
        ]
        if timeline
        else [[], [], []]
    )
    drift = {
        name: {
            "p50_ms": (percentile(part, 50) or 0) * 1000,
            "p99_ms": (percentile(part, 99) or 0) * 1000,
            "n": len(part),
        }
        for name, part in zip(("first_third", "middle_third", "last_third"), thirds, strict=True)
    }
    rss: dict[str, Any] = {}
    for proc in (KG, TJ, "ledger-writer"):
        series = sampler.rss_series(proc)
        if len(series) < 4:
            continue
        warm = [r for t, r in series if seconds * 0.15 <= t <= seconds * 0.3] or [series[1][1]]
        end = [r for t, r in series if t >= seconds * 0.85] or [series[-1][1]]
        start_mb, end_mb = sum(warm) / len(warm), sum(end) / len(end)
        rss[proc] = {"after_warmup_mb": start_mb, "end_mb": end_mb, "growth": end_mb / start_mb - 1}
    first, last = drift["first_third"]["p99_ms"], drift["last_third"]["p99_ms"]
    return {
        "seconds": seconds,
        "rate": next(r for r in out["results"] if r["type"] == "open")["rate"],
        "delivery": {k: v for k, v in sse.items() if k != "timeline"},
        "accept": next(r for r in out["results"] if r["type"] == "open"),
        "drift": drift,
        "p99_drift_ratio": last / first if first else None,
        "rss": rss,
        "loadgen_cpu_cores": out["cpu_share"],
        "cpu_cores": out["cpu_cores"],
    }


# --- the table -----------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def table(results: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    rows: list[tuple[str, str, str, str, str, str]] = []

    def row(
        scenario: str, value: str, baseline: str, ratio: Any, goal: str, ok: bool | None
    ) -> None:
        verdict = "-" if ok is None else ("PASS" if ok else "FAIL")
        rows.append((scenario, value, baseline, _fmt(ratio, 2), goal, verdict))

    for label, entry in results.get("accept", {}).items():
        bare = entry["bare"]
        row(f"1 bare endpoint {label}", f"{bare['rps']:.0f} req/s", "-", None, "-", None)
        for suite, run in entry["suites"].items():
            name = f"1 accept {label} {SHORT[suite]}"
            value = f"{run['rps']:.0f} req/s p99 {_fmt(run['latency']['p99_ms'], 0)} ms"
            row(name, value, f"bare {bare['rps']:.0f}", run["ratio_to_bare"], "-", None)
            c = run["composed"]
            row(
                name,
                value,
                f"composed {run['composed_limit_rps']:.0f} (bare {c['bare_ms']:.2f}+seal "
                f"{c['seal_ms']:.2f}+pub {c['publish_ms']:.2f} ms /{c['parallelism']:.2f})",
                run["ratio_to_composed"],
                ">= 0.8",
                run["ratio_to_composed"] >= 0.8,
            )
    db = results.get("raw", {}).get("db_commit", {})
    if db:
        c = db["concurrent"]
        row(
            "1 raw Postgres commits (20 conns)",
            f"{c['commits_per_s']:.0f}/s p50 {_fmt(c['p50_ms'])} p99 {_fmt(c['p99_ms'])} ms",
            f"serial p50 {_fmt(db['serial']['p50_ms'])} ms",
            None,
            "(2 commits per accept)",
            None,
        )
    hop = results.get("raw", {}).get("publish", {}).get("hop", {})
    hop_p99 = hop.get("p99_ms")
    hop_text = f"raw bus hop p99 {_fmt(hop_p99)} ms"
    system = {
        k: v
        for k, v in results.get("system", {}).items()
        if not (isinstance(v, dict) and "error" in v)
    }
    for name, v in results.get("system", {}).items():
        if isinstance(v, dict) and "error" in v:
            row(f"{name}: did not complete", v["error"][:80], "-", None, "-", False)
    if "delivery" in system:
        d = system["delivery"]["sse"]["latency"]
        rate = system["delivery"]["open-alerts"]
        row(
            f"2 delivery p50/p99 @ {rate['rate']:.0f}/s (got {rate['achieved_rps']:.0f}/s)",
            f"{_fmt(d['p50_ms'])} / {_fmt(d['p99_ms'])} ms",
            hop_text,
            (d["p99_ms"] or 0) / hop_p99 if hop_p99 else None,
            "p99 <= 50 ms",
            d["p99_ms"] is not None
            and d["p99_ms"] <= 50
            and not system["delivery"]["sse"]["missing"],
        )
    if "fanout" in system:
        f = system["fanout"]["sse"]
        single = system.get("delivery", {}).get("sse", {}).get("latency", {}).get("p99_ms")
        row(
            "3 fan-out 100 subs @ 100/s",
            f"p99 {_fmt(f['latency']['p99_ms'])} ms, behind {f['behind']}/100, "
            f"missing {f['missing']}",
            f"1-sub p99 {_fmt(single)} ms",
            (f["latency"]["p99_ms"] or 0) / single if single else None,
            "p99 <= 100 ms, 0 behind",
            f["latency"]["p99_ms"] is not None
            and f["latency"]["p99_ms"] <= 100
            and f["behind"] == 0,
        )
    if "burst" in system:
        b = system["burst"]
        batch = b["batch-burst"]
        sse_b = b["sse"].get("by_poster", {})
        tail_b = b["ledger_tail"].get("by_poster", {})
        burst_sse, live = sse_b.get("burst", {}), sse_b.get("live", {})
        ledger_burst = tail_b.get("burst", {})
        ends = [x.get("last_arrival") for x in (burst_sse, ledger_burst)]
        complete = not burst_sse.get("missing", 1) and not ledger_burst.get("missing", 1)
        done_in = (
            max(e for e in ends if e is not None) - batch["started"]
            if all(e is not None for e in ends)
            else None
        )
        rate = batch["accepted"] / batch["post_seconds"] if batch["post_seconds"] else 0
        projected = batch["alerts"] / rate if rate else None
        row(
            "4 burst 10k via :batch",
            f"{batch['accepted']}/{batch['alerts']} accepted in {batch['post_seconds']:.0f} s "
            f"(bounded); those delivered+ledgered after {_fmt(done_in)} s (missing "
            f"{burst_sse.get('missing')}/{ledger_burst.get('missing')}); 10k at this rate: "
            f"{_fmt(projected, 0)} s",
            f"accept {rate:.0f}/s vs POST max {results.get('max_accept_rps', 0):.0f}/s",
            rate / results["max_accept_rps"] if results.get("max_accept_rps") else None,
            "<= 30 s",
            complete
            and batch["accepted"] == batch["alerts"]
            and done_in is not None
            and done_in <= 30,
        )
        lp99 = live.get("latency", {}).get("p99_ms")
        row(
            "4 burst: live alerts' delivery",
            f"p99 {_fmt(lp99)} ms (n {live.get('latency', {}).get('n')})",
            hop_text,
            (lp99 or 0) / hop_p99 if hop_p99 and lp99 else None,
            "p99 < 1000 ms",
            lp99 is not None and lp99 < 1000 and not live.get("missing"),
        )
    if "ledger" in system:
        t = system["ledger"]["ledger_tail"]
        c = system["ledger"]["closed-alerts"]
        row(
            f"5 ledger lag @ max ({c['rps']:.0f}/s)",
            f"p50 {_fmt(t['lag']['p50_ms'])} / p99 {_fmt(t['lag']['p99_ms'])} ms, "
            f"missing {t['missing']}",
            hop_text,
            (t["lag"]["p99_ms"] or 0) / hop_p99 if hop_p99 else None,
            "p99 <= 1000 ms",
            t["lag"]["p99_ms"] is not None and t["lag"]["p99_ms"] <= 1000 and not t["missing"],
        )
    if system.get("max_rss_mb"):
        mem = system["max_rss_mb"]
        node_max = max(mem.get(n, 0) for n in (KG, TJ))
        bare_rss = results.get("accept", {}).get("w1", {}).get("bare", {}).get("server_max_rss_mb")
        row(
            "6 node RSS under load (max of KG, TJ)",
            f"{node_max:.0f} MB",
            f"bare app {_fmt(bare_rss, 0)} MB",
            node_max / bare_rss if bare_rss else None,
            "<= 150 MB",
            node_max <= 150,
        )
    if "soak" in system:
        s = system["soak"]
        growth = max((v["growth"] for v in s["rss"].values()), default=None)
        row(
            f"6 soak {s['seconds']:.0f} s @ {s['rate']:.0f}/s: RSS growth",
            f"{_fmt(growth * 100 if growth is not None else None)} %",
            "RSS after warm-up",
            1 + growth if growth is not None else None,
            "<= 5 %",
            growth is not None and growth <= 0.05,
        )
        d = s["drift"]
        row(
            "6 soak: delivery p99 drift",
            f"{_fmt(d['first_third']['p99_ms'])} -> {_fmt(d['last_third']['p99_ms'])} ms",
            "first third",
            s["p99_drift_ratio"],
            "no drift (<= 1.5x)",
            s["p99_drift_ratio"] is not None and s["p99_drift_ratio"] <= 1.5,
        )
    if "taxii" in system:
        r, lat = system["taxii"]["read"], system["taxii"]["latency"]
        row(
            f"8 TAXII read: {r['taxii']['alerts']} alerts, {r['objects_per_alert']} objects each",
            f"{r['taxii']['alerts_per_s']:.0f} alerts/s ({r['taxii']['objects_per_s']:.0f} obj/s)",
            f"GET /v1/feed {r['feed']['alerts_per_s']:.0f} alerts/s",
            r["ratio_alerts_per_s"],
            "-",
            None,
        )
        t, n = lat["taxii"], lat["sse"]
        row(
            f"8 TAXII poll every {lat['poll_interval_s']} s @ {lat['rate']:.0f}/s: p50/p99",
            f"{_fmt(t['p50_ms'])} / {_fmt(t['p99_ms'])} ms (missed {t['missed']})",
            f"SSE {_fmt(n['p50_ms'])} / {_fmt(n['p99_ms'])} ms (missed {n['missed']})",
            (t["p99_ms"] / n["p99_ms"]) if t["p99_ms"] and n["p99_ms"] else None,
            "none missed",
            t["missed"] == 0,
        )
    if "profile" in results:
        shares = results["profile"]["share_of_busy"]
        text = ", ".join(f"{k.split(' (')[0]} {v * 100:.0f}%" for k, v in list(shares.items())[:7])
        row("7 accept path, share of busy time", text, "-", None, "-", None)
    return rows


def print_table(rows: list[tuple[str, ...]]) -> str:
    header = ("scenario", "value", "baseline (same run)", "ratio", "goal", "")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="blo-bench-"))
    work.chmod(0o711)  # the postgres system user must traverse it when we run as root
    results: dict[str, Any] = {
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {
            "cpus": psutil.cpu_count(),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_start": list(psutil.getloadavg()),
            "note": "2 cores shared by the load generator, the nodes, NATS and Postgres",
        },
        "parameters": vars(args) | {"only": sorted(args.only), "node_env": NODE_OVERRIDES},
    }
    try:
        await accept_phase(args, work, results)
        if set(args.only) & {"delivery", "ledger", "fanout", "burst", "taxii", "soak"}:
            await system_phase(args, work, results)
    finally:
        results["duration_seconds"] = time.monotonic() - started
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            results["work_dir"] = str(work)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--soak-seconds", type=float, default=60.0)
    parser.add_argument("--measure-seconds", type=float, default=8.0)
    parser.add_argument("--only", default=",".join(ALL), help="comma-separated: " + ",".join(ALL))
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results.json")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs)")
    args = parser.parse_args()
    args.only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = set(args.only) - set(ALL)
    if unknown:
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    results = asyncio.run(main_async(args))
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    rows = table(results)
    results["table"] = [
        dict(zip(("scenario", "value", "baseline", "ratio", "goal", "verdict"), r, strict=True))
        for r in rows
    ]
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print()
    print(print_table(rows))
    print(f"\nload generator: a separate process; its CPU use is in {args.out} (loadgen_cpu_cores)")
    print(f"results: {args.out}   total: {results['duration_seconds']:.0f} s")


if __name__ == "__main__":
    main()
