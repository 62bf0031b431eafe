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
    """Agencies, nodes, public keys (with revocations) and sharing agreements."""
    return await view.snapshot()


@router.get("/livez")
async def livez() -> dict[str, str]:
    return {"status": "ok"}


NodeHealth = Annotated[Health, Depends(service(Health))]


@router.get("/readyz")
async def readyz(health: NodeHealth) -> JSONResponse:
    checks = await health.ready()
    ok = all(checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", response_class=PlainTextResponse)
async def metrics(health: NodeHealth) -> str:
    """Prometheus text format: accepted alerts, deliveries by outcome, publish and delivery
    latency, this node's consumer lag, consumer failures, ledger appends."""
    return await health.metrics()
