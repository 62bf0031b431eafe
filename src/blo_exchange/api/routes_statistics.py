"""``/v1/statistics``: an analyst's seizure statistics, as JSON or as an IDS-shaped CSV.

Computed on each request from the alerts addressed to the caller's agency, opened through the
feed service (which also decides who may read: an analyst of this node's agency; anyone else
gets a 403 problem). Nothing of the nominal part is read (``services.statistics``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import Response

from blo_exchange.api.deps import CurrentPrincipal, Runtime
from blo_exchange.services.seizure_export import seizures_csv
from blo_exchange.services.statistics import collect, compute

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["statistics"])


@router.get("/statistics")
async def statistics(principal: CurrentPrincipal, runtime: Runtime) -> dict[str, Any]:
    """Seizures and quantities (kg, l, tablets, units) by crossing point, substance and month."""
    runtime.feed.require_analyst(principal)
    return compute(await collect(runtime.feed, principal)).to_json()


@router.get(
    "/statistics.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per item seized"}},
)
async def statistics_csv(principal: CurrentPrincipal, runtime: Runtime) -> Response:
    """Every item seized, one row each, after UNODC's individual drug seizures form."""
    runtime.feed.require_analyst(principal)
    text = seizures_csv(await collect(runtime.feed, principal))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="seizures.csv"'},
    )
