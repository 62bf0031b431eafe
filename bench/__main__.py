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
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench.accept import accept_phase
from bench.harness import (
    FOTEHOBOD,
    KG,
    NODE_OVERRIDES,
    REPO,
    TJ,
    Sampler,
    System,
    log,
    run_loadgen,
)
from bench.loadgen_core import percentile
from bench.report import print_table, table

ALL = (
    "accept",
    "profile",
    "delivery",
    "ledger",
    "fanout",
    "burst",
    "drain",
    "taxii",
    "soak",
    "e2e",
    "lookout",
    "attachments",
)
SYSTEM = {
    "delivery",
    "ledger",
    "fanout",
    "burst",
    "drain",
    "taxii",
    "soak",
    "e2e",
    "lookout",
    "attachments",
}


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

        ledger_cursor = [-1]  # the auditor's last entry seen, across scenarios
        feed_cursor = [0]  # TJ's feed read up to here by the markers, across scenarios

        async def scenario(name: str, spec: dict[str, Any], interval: float = 0.5) -> Any:
            if ledger_cursor[0] < 0:  # from the ledger's head before the marker, not through e2e's
                ledger_cursor[0] = await _ledger_size(tail) - 1
            cursor, marker = await _marker(kg, post, sse, feed_cursor)
            # Each scenario starts on a settled system: the marker is in TJ's feed (so what an
            # earlier scenario left on the delivery lanes is through) and in the ledger (so is
            # what it left the writer). Without the second wait, a scenario run past the
            # sustained rate (delivery, at half the accept max) left the writer a backlog that
            # the next one, the ledger lag's, measured as its own (it waits 2-3 s here).
            settled = await _in_ledger(marker, tail, ledger_cursor)
            if settled > 1.0:
                log(f"{name}: waited {settled:.1f} s for the ledger to take in the last one's")
            for task in spec["tasks"]:
                if task["type"] == "sse":
                    task["cursor"] = cursor
                if task["type"] == "ledger_tail":
                    # After the marker's entry: a tail from -1 first paged through every entry
                    # of the scenarios before (1,000 a poll, ~13 MB with their records), and the
                    # first entries' lag was that catch-up's (stop 29).
                    task["cursor"] = ledger_cursor[0]
            with Sampler(pids, interval=interval) as sampler:
                out = await run_loadgen(spec, work / "loadgen", name)
            out["settled_seconds"] = round(settled, 2)
            for proc, rss in sampler.max_rss.items():
                memory[proc] = max(memory.get(proc, 0.0), rss)
            out["cpu_cores"] = {p: round(sampler.cpu_share(p), 3) for p in pids}
            return out, sampler

        if "e2e" in args.only:  # first, on the fresh system (bench/e2e.py)
            with _guard(system_results, "e2e"):
                from bench.e2e import MAX_STEPS, TODAY_RPS, e2e_run

                bare = results.get("accept", {}).get("w1", {}).get("bare", {})
                system_results["e2e"] = await e2e_run(
                    creds=creds,
                    pids=pids,
                    post=post,
                    sse=sse,
                    cursor=lambda: _current_seq(kg, post, sse, feed_cursor),
                    work=work,
                    start_rate=args.e2e_rate or TODAY_RPS,
                    max_steps=args.e2e_steps or MAX_STEPS,
                    bare_http_s=bare["server_cpu_cores"] / bare["rps"] if bare.get("rps") else None,
                )
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
                            {
                                **sse,
                                "subscribers": 100,
                                "tokens": tj["analyst_tokens"],
                                "behind_after": 1.0,
                            },
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
                            # Every 0.25 s, as for the drain: a 20 ms auditor loop took a sixth
                            # of the machine (blo-fotehobod-tj 0.29-0.38 core) from a 30 s goal.
                            {**tail, "last_arrival": True, "interval": 0.25},
                        ],
                        "drain": 45,
                        "timeout": 300,
                    },
                )
                system_results["burst"] = _pick(out)
        if "drain" in args.only:
            with _guard(system_results, "drain"):
                log("drain: 10,000 sealed alerts queued on the bulk lane, live alerts at 5/s")
                out, _ = await scenario(
                    "drain",
                    {
                        "tasks": [
                            {**sse, "subscribers": 1, "last_arrival": True},
                            {
                                "type": "queue",
                                "count": 10_000,
                                "node_id": KG,
                                "key_dir": str(system.root / "keys" / KG),
                                "database_url": creds["database_url"],
                                "own_copies_database_url": system.node_env(KG)["BLO_DATABASE_URL"],
                                "nats_url": creds["nats_url"],
                                "bulk": _has_bulk_lane(),
                                "name": "queued",
                            },
                            {**post, "type": "open", "rate": 5, "duration": 30, "name": "live"},
                            # Polled every 0.25 s, not 0.02: precise enough for a 30 s goal;
                            # a tight auditor loop took a quarter of the machine from the drain.
                            {**tail, "last_arrival": True, "interval": 0.25},
                        ],
                        "drain": 60,
                        "timeout": 300,
                    },
                )
                system_results["drain"] = _pick(out)
        if "taxii" in args.only:
            with _guard(system_results, "taxii"):
                log("taxii: feed vs TAXII read throughput on blo-karamyk-tj; SSE vs TAXII poll")
                from bench.taxii_poll import run as taxii_run

                system_results["taxii"] = await taxii_run(nodes, KG)
        if "lookout" in args.only:
            with _guard(system_results, "lookout"):
                log("lookout: checks and searches on blo-karamyk-tj beside reading the alerts")
                from bench.lookout_check import run as lookout_run

                system_results["lookout"] = await lookout_run(nodes, KG)
        if "attachments" in args.only:
            with _guard(system_results, "attachments"):
                log("attachments: 5 MiB files KG -> TJ (upload, seal, bucket, fetch) vs raw put")
                from bench.attachments import run as attachments_run

                system_results["attachments"] = await attachments_run(nodes, creds["nats_url"])
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


async def _current_seq(
    node: dict[str, Any], post: dict[str, Any], sse: dict[str, Any], seen: list[int]
) -> int:
    return (await _marker(node, post, sse, seen))[0]


async def _ledger_size(tail: dict[str, Any]) -> int:
    """The entries in the auditor's latest checkpoint (0 before the first)."""
    import httpx

    async with httpx.AsyncClient(timeout=30) as client:
        head = await client.get(
            tail["url"] + "/v1/ledger/checkpoint",
            headers={"Authorization": f"Bearer {tail['token']}"},
        )
    return int(head.json()["tree_size"]) if head.status_code == 200 else 0


async def _in_ledger(alert_id: str, tail: dict[str, Any], cursor: list[int]) -> float:
    """Wait (60 s at most) until the auditor sees ``alert_id``'s ``alert_shared`` entry;
    ``cursor[0]`` is where the last wait left off. Seconds waited."""
    import httpx

    started = time.monotonic()
    headers = {"Authorization": f"Bearer {tail['token']}"}
    async with httpx.AsyncClient(timeout=30) as client:
        while time.monotonic() < started + 60:
            page = await client.get(
                tail["url"] + "/v1/ledger/entries",
                params={"type": "alert_shared", "cursor": cursor[0], "limit": 1000},
                headers=headers,
            )
            page.raise_for_status()
            entries = page.json()["entries"]
            for entry in entries:
                cursor[0] = max(cursor[0], int(entry["index"]))
                if entry["alert_id"] == alert_id:
                    return time.monotonic() - started
            if not entries:
                await asyncio.sleep(0.25)
    log(f"the marker {alert_id} was not in the ledger after 60 s")
    return time.monotonic() - started


async def _marker(
    node: dict[str, Any], post: dict[str, Any], sse: dict[str, Any], seen: list[int]
) -> tuple[int, str]:
    """Post one marker alert on ``node``: its feed position on the SSE node is where new
    subscribers start (not at 0, which would replay, and decrypt, everything earlier scenarios
    posted). Positions are the SSE node's own, so the marker is looked up in its feed, from
    ``seen[0]``, where the last look got to (kept there: from 0 each time, the look read the
    whole feed, which after the burst and the drain took longer than its 30 s and failed the
    soak in a whole run of stop 31). Its position and its id."""
    import asyncio
    import time
    import uuid

    import httpx

    from bench.loadgen_core import ALERT_BODY

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
        cursor, deadline = seen[0], time.monotonic() + 60
        while time.monotonic() < deadline:
            page = await client.get(
                sse["url"] + "/v1/feed", params={"cursor": cursor, "limit": 500}, headers=reader
            )
            page.raise_for_status()
            body = page.json()
            for item in body["items"]:
                if item["alert_id"] == marker:
                    seen[0] = int(item["feed_seq"])  # the next marker is stored after it
                    return int(item["feed_seq"]), str(marker)
            if not body["items"]:
                await asyncio.sleep(0.05)
            cursor = seen[0] = body["next_cursor"]
        raise RuntimeError("the marker alert never reached the SSE node's feed in 60 s")


def _has_bulk_lane() -> bool:
    """Whether the nodes under test read a bulk lane (a tree from before it does not)."""
    import inspect

    from blo_exchange.domain.subjects import alert_subject

    return "bulk" in inspect.signature(alert_subject).parameters


def _pick(out: dict[str, Any]) -> dict[str, Any]:
    picked: dict[str, Any] = {
        r["type"] + ("-" + r["name"] if r.get("name") else ""): r for r in out["results"]
    }
    for r in picked.values():
        r.pop("timeline", None)
    picked["loadgen_cpu_cores"] = out["cpu_share"]
    picked["cpu_cores"] = out["cpu_cores"]
    picked["settled_seconds"] = out.get("settled_seconds")
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
        if set(args.only) != {"attachments"}:  # the attachment scenario needs no phase A
            await accept_phase(args, work, results)
        if set(args.only) & SYSTEM:
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
    parser.add_argument(
        "--e2e-rate",
        type=float,
        default=0.0,
        help="e2e: first offered rate and step (default: 31/s, the issue's 'today')",
    )
    parser.add_argument(
        "--e2e-steps", type=int, default=0, help="e2e: at most this many rates (default: 7)"
    )
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
