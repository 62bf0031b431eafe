"""Directory, health and metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, PlainTextResponse

from blo_exchange.api.deps import CurrentPrincipal, Runtime

__all__ = ["router"]

router = APIRouter(tags=["meta"])


@router.get("/v1/directory")
async def directory(principal: CurrentPrincipal, runtime: Runtime) -> dict[str, Any]:
    """Agencies, nodes, public keys (with revocations) and sharing agreements."""
    return await runtime.directory.snapshot()


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
    """Prometheus text format: deliveries by outcome, ledger appends, consumer failures."""
    lines = [
        "# HELP blo_delivery_total Alerts handled by this node's consumer, by outcome.",
        "# TYPE blo_delivery_total counter",
    ]
    for status, count in sorted(runtime.delivery.counts.items()):
        lines.append(f'blo_delivery_total{{node="{runtime.node.id}",outcome="{status}"}} {count}')
    lines += [
        "# HELP blo_consumer_failures_total Batches whose handler failed and were redelivered.",
        "# TYPE blo_consumer_failures_total counter",
        f'blo_consumer_failures_total{{node="{runtime.node.id}"}} {runtime.consumer.failures}',
    ]
    if runtime.ledger_writer is not None:
        lines += [
            "# HELP blo_ledger_appended_total Entries appended by this process's ledger writer.",
            "# TYPE blo_ledger_appended_total counter",
            f"blo_ledger_appended_total {runtime.ledger_writer.writer.appended}",
        ]
    return "\n".join(lines) + "\n"
