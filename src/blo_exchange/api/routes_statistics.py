"""``/v1/statistics``: an analyst's seizure statistics, as JSON or as an IDS-shaped CSV.

Computed on each request from the alerts addressed to the caller's agency, opened through the
feed service (which also decides who may read: an analyst of this node's agency; anyone else
gets a 403 problem). Nothing of the nominal part is read (``services.statistics``).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from blo_exchange.api.deps import CurrentPrincipal, service
from blo_exchange.services.feed import FeedService
from blo_exchange.services.seizure_export import seizures_csv
from blo_exchange.services.statistics import collect, compute

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["statistics"])

Feed = Annotated[FeedService, Depends(service(FeedService))]


@router.get("/statistics")
async def statistics(principal: CurrentPrincipal, feed: Feed) -> dict[str, Any]:
    """Seizures and quantities (kg, l, tablets, units) by crossing point, substance and month."""
    feed.require_analyst(principal)
    return compute(await collect(feed, principal)).to_json()


@router.get(
    "/statistics.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}, "description": "one row per item seized"}},
)
async def statistics_csv(principal: CurrentPrincipal, feed: Feed) -> Response:
    """Every item seized, one row each, after UNODC's individual drug seizures form."""
    feed.require_analyst(principal)
    text = seizures_csv(await collect(feed, principal))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="seizures.csv"'},
    )
