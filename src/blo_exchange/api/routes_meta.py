"""Directory, health and metrics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import JSONResponse, PlainTextResponse

from blo_exchange.api.deps import CurrentPrincipal, service
from blo_exchange.services.ports import DirectoryView, Health

__all__ = ["router"]

router = APIRouter(tags=["meta"])


@router.get("/v1/directory")
async def directory(
    principal: CurrentPrincipal,
    view: Annotated[DirectoryView, Depends(service(DirectoryView))],
) -> dict[str, Any]:
    """Agencies, nodes, public keys (with revocations) and sharing agreements; where roots are
    pinned, the nodes, keys and agreements are the signed statements' (served too)."""
    return await view.snapshot()


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


NodeHealth = Annotated[Health, Depends(service(Health))]


@router.get("/readyz")
async def readyz(health: NodeHealth) -> JSONResponse:
    """Ready: NATS, the alerts stream and Postgres answer and the delivery consumer is caught up.

    Read from state a background task keeps (at most a second old), so it answers at once
    whatever is down; 503 with Retry-After while anything is not ready."""
    readiness = health.ready()
    checks = readiness.checks()
    ok = all(checks.values())
    body = {
        "status": "ok" if ok else "unavailable",
        "checks": checks,
        "delivery_backlog": readiness.backlog,
    }
    headers = None if ok else {"Retry-After": "1"}
    return JSONResponse(body, status_code=200 if ok else 503, headers=headers)


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(health: NodeHealth) -> str:
    """Prometheus text format: accepted alerts, deliveries by outcome, publish and delivery
    latency, this node's consumer lag, consumer failures, ledger appends."""
    return await health.metrics()
