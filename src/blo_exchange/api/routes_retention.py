"""``/v1/retention``: the originating agency's review of nominal blocks about to expire, and its
decisions (docs/retention.md). The auditors' report is ``/v1/ledger/retention``."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from blo_exchange.api.deps import CurrentPrincipal, service
from blo_exchange.api.strict_json import StrictJsonRoute
from blo_exchange.domain.ids import AlertId, format_time
from blo_exchange.services.retention import RetainedNominal
from blo_exchange.services.retention_review import RetentionReviews

__all__ = ["KeepBody", "router"]

router = APIRouter(prefix="/v1", tags=["retention"], route_class=StrictJsonRoute)

Reviews = Annotated[RetentionReviews, Depends(service(RetentionReviews))]


class KeepBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    until: date = Field(
        description="The new last day (exclusive: the block expires at 00:00 UTC of this day); "
        "later than the current end, no later than the agreement's maximum."
    )
    reason: str = Field(
        min_length=1,
        max_length=500,
        description="Why the nominal block is still needed. It goes into a signed record and "
        "the ledger, which every party's auditors read: no personal data.",
    )


def task_json(row: RetainedNominal) -> dict[str, Any]:
    return {
        "alert_id": row.alert_id,
        "border_pair": row.border_pair,
        "kind": row.kind,
        "agreement_id": row.agreement_id,
        "created_at": format_time(row.created_at),
        "expires_at": format_time(row.expires_at),
        "max_until": format_time(row.max_until),
        "decision": row.decision,
        "reason": row.reason,
    }


@router.get("/retention/reviews")
async def review_tasks(
    principal: CurrentPrincipal,
    reviews: Reviews,
    within_days: Annotated[int, Query(ge=1, le=366)] = 14,
) -> dict[str, Any]:
    """An analyst of this node's agency: its alerts whose nominal block expires at partners
    within ``within_days``, soonest first."""
    rows = await reviews.tasks(principal, within_days=within_days)
    return {"tasks": [task_json(r) for r in rows]}


@router.post("/retention/reviews/{alert_id}/keep")
async def keep(
    alert_id: AlertId, body: KeepBody, principal: CurrentPrincipal, reviews: Reviews
) -> dict[str, Any]:
    """Keep the nominal block until ``until``: a signed record tells every recipient node.
    422 beyond the agreement's maximum, not later than now, or without a reason."""
    until = datetime.combine(body.until, time(0), tzinfo=UTC)
    row = await reviews.keep(principal, alert_id, until=until, reason=body.reason)
    return task_json(row)


@router.post("/retention/reviews/{alert_id}/expire")
async def let_expire(
    alert_id: AlertId, principal: CurrentPrincipal, reviews: Reviews
) -> dict[str, Any]:
    """Let the nominal block expire as the agreement says (recorded on this node only)."""
    return task_json(await reviews.let_expire(principal, alert_id))
