"""Phase A of ``make bench``: the accept path alone against its same-run baselines, and a profile.

NATS + Postgres + one node (blo-karamyk-kg) and nothing else: (a) a bare FastAPI endpoint
validating the same model, served the same way; (b) the composed limit: bare cost per request +
seal() of the envelope for 2 recipients + a raw nats-py JetStream publish. At 1 and 2 uvicorn
workers, for both HPKE suites.
"""

from __future__ import annotations

import argparse
import signal
from pathlib import Path
from typing import Any

from bench.harness import KG, REPO, Sampler, System, log, run_loadgen, serve, wait_ready

SUITES = ("MLKEM768-X25519/HKDF-SHA256/AES-256-GCM", "X25519/HKDF-SHA256/AES-256-GCM")
SHORT = {SUITES[0]: "MLKEM768-X25519", SUITES[1]: "X25519"}
WORKER_CONFIGS = (
    ("w1", 1, "uvicorn"),
    ("w2-uvicorn", 2, "uvicorn"),
    ("w2-reuseport", 2, "reuseport"),
)


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
