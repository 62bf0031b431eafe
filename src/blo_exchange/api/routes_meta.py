"""Directory, health and metrics."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from blo_exchange.api.deps import CurrentPrincipal, Runtime
from blo_exchange.bootstrap.node import NodeRuntime

__all__ = ["router"]

router = APIRouter(tags=["meta"])


@router.get("/v1/directory")
async def directory(principal: CurrentPrincipal, runtime: Runtime) -> dict[str, Any]:
    """Agencies, nodes, public keys (with revocations) and sharing agreements; where roots are
    pinned, the nodes, keys and agreements are the signed statements' (served too)."""
    snapshot = await runtime.directory.snapshot()
    if runtime.trusted is not None:
        snapshot |= await runtime.trusted.snapshot()
    return snapshot


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(runtime: Runtime) -> JSONResponse:
    checks = await runtime.ready()
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(runtime: Runtime) -> str:
    """Prometheus text format: accepted alerts, deliveries by outcome, publish and delivery
    latency, this node's consumer lag, consumer failures, ledger appends."""
    node = f'node="{runtime.node.id}"'
    lines = [
        "# HELP blo_accepted_total Alerts this node accepted (202) from its terminals.",
        "# TYPE blo_accepted_total counter",
        f"blo_accepted_total{{{node}}} {runtime.ingest.accepted}",
        "# HELP blo_delivery_total Alerts handled by this node's consumer, by outcome.",
        "# TYPE blo_delivery_total counter",
    ]
    for status, count in sorted(runtime.delivery.counts.items()):
        lines.append(f'blo_delivery_total{{{node},outcome="{status}"}} {count}')
    lines += runtime.ingest.publish_seconds.render(
        "blo_publish_seconds", "JetStream publish of an accepted alert until its ack.", node
    )
    lines += runtime.delivery.delivery_seconds.render(
        "blo_delivery_latency_seconds",
        "From an alert's created_at at its origin to its delivery at this node.",
        node,
    )
    lag = await _consumer_lag(runtime)
    if lag is not None:
        lines += [
            "# HELP blo_consumer_pending Messages waiting in this node's delivery consumer.",
            "# TYPE blo_consumer_pending gauge",
            f"blo_consumer_pending{{{node}}} {lag}",
        ]
    lines += [
        "# HELP blo_consumer_failures_total Batches whose handler failed and were redelivered.",
        "# TYPE blo_consumer_failures_total counter",
        f"blo_consumer_failures_total{{{node}}} {runtime.consumer.failures}",
    ]
    if runtime.ledger_writer is not None:
        lines += [
            "# HELP blo_ledger_appended_total Entries appended by this process's ledger writer.",
            "# TYPE blo_ledger_appended_total counter",
            f"blo_ledger_appended_total {runtime.ledger_writer.writer.appended}",
        ]
    return "\n".join(lines) + "\n"


async def _consumer_lag(runtime: NodeRuntime) -> int | None:
    """Pending plus unacknowledged messages of the node's consumer; None when NATS won't say."""
    spec = runtime.consumer.spec
    try:
        info = await asyncio.wait_for(
            runtime.bus.js.consumer_info(spec.stream, spec.durable), timeout=1.0
        )
    except Exception:  # metrics must answer even when NATS does not
        return None
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
