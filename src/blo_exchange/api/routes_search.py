"""``/v1/search`` (an analyst searches received alerts), ``/v1/lookout`` (an officer checks a
plate, document or name at a crossing) and ``/v1/alerts/{id}/hits`` (the originator sees where
its risk alert hit). The rules are the services' (``services.search``, ``services.lookout``);
docs/contracts/api.md states them.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from blo_exchange.api.deps import CurrentPrincipal, service
from blo_exchange.api.strict_json import StrictJsonRoute
from blo_exchange.domain.ids import AlertId
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.errors import NotFound
from blo_exchange.ledger.entries import parse_leaf_input
from blo_exchange.ledger.ports import EntryFilter, LedgerReads
from blo_exchange.services.feed import FeedService
from blo_exchange.services.hits import reported_hit
from blo_exchange.services.lookout import Lookout
from blo_exchange.services.search import AlertSearch

__all__ = ["LookoutRequest", "router"]

router = APIRouter(prefix="/v1", tags=["search"], route_class=StrictJsonRoute)

Search = Annotated[AlertSearch, Depends(service(AlertSearch))]
Checks = Annotated[Lookout, Depends(service(Lookout))]
Feed = Annotated[FeedService, Depends(service(FeedService))]
Ledger = Annotated[LedgerReads, Depends(service(LedgerReads))]

MAX_HITS_LISTED = 1000


class LookoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: FieldKind
    value: str = Field(min_length=1, max_length=200)
    crossing_point: str | None = Field(default=None, max_length=64)


@router.get("/search")
async def search(
    principal: CurrentPrincipal,
    alerts: Search,
    field: FieldKind,
    q: Annotated[str, Query(min_length=1, max_length=200)],
) -> dict[str, Any]:
    """Received alerts whose names, documents, plates, phones or companies match ``q`` in any
    script (Рахимов finds RAKHIMOV); newest first, at most 50."""
    result = await alerts.search(principal, field, q)
    return {"field": result.field.value, "items": result.items}


@router.post("/lookout")
async def lookout(
    principal: CurrentPrincipal, checks: Checks, body: LookoutRequest
) -> dict[str, Any]:
    """Check a value against the active risk alerts this agency received. Each hit is shown and
    reported to its originator by a signed ``hit`` receipt (``queued`` while the bus is down)."""
    result = await checks.check(
        principal, body.field, body.value, crossing_point=body.crossing_point
    )
    return result.to_json()


@router.get("/alerts/{alert_id}/hits")
async def alert_hits(
    alert_id: AlertId, principal: CurrentPrincipal, feed: Feed, ledger: Ledger
) -> dict[str, Any]:
    """Where and when lookouts matched this alert, as the ledger records it; for the origin
    agency's terminals and analysts on this node."""
    item = await feed.get(principal, alert_id)
    if item["header"].get("origin_agency") != principal.agency_id:
        raise NotFound("no such alert")
    rows = await ledger.entries(
        EntryFilter(type="hit", alert_id=alert_id), after=-1, limit=MAX_HITS_LISTED
    )
    hits = [reported_hit(parse_leaf_input(leaf)) for _, leaf in rows]
    return {"alert_id": alert_id, "hits": [h.to_json() for h in hits if h is not None]}
