"""``/v1/alerts/{id}/reshare-requests``: asking to share an alert beyond its recipients, and the
originating agency's decision (docs/contracts/receipts.md)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, ConfigDict, Field

from blo_exchange.api.deps import CurrentPrincipal, service
from blo_exchange.api.strict_json import StrictJsonRoute
from blo_exchange.domain.ids import AgencyId, AlertId
from blo_exchange.services.reshare import ReshareService
from blo_exchange.services.reshare_model import MAX_REASON_CHARS

__all__ = ["DecisionBody", "ReshareRequestBody", "router"]

router = APIRouter(prefix="/v1", tags=["reshare"], route_class=StrictJsonRoute)

_NO_PERSONAL_DATA = (
    " It goes into a signed record and the ledger, which the auditors of every party read: it "
    "must not contain personal data (no names, birth dates, document or phone numbers)."
)


class ReshareRequestBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    target_agency: AgencyId = Field(
        description="The agency to share the alert with; not already a recipient."
    )
    reason: str = Field(
        min_length=1,
        max_length=MAX_REASON_CHARS,
        description="Why the alert should go to the target agency." + _NO_PERSONAL_DATA,
    )


class DecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_REASON_CHARS,
        description="Optional grounds for the decision." + _NO_PERSONAL_DATA,
    )


Reshare = Annotated[ReshareService, Depends(service(ReshareService))]


@router.post("/alerts/{alert_id}/reshare-requests", status_code=202)
async def request_reshare(
    alert_id: AlertId, body: ReshareRequestBody, principal: CurrentPrincipal, reshare: Reshare
) -> dict[str, Any]:
    """An analyst of a recipient agency, on its node, asks to share the alert with another
    agency. The target must be in the directory, not a recipient yet, and covered by an
    agreement in force between the origin agency and the target for the alert's border pair,
    kind and TLP (else 422). The origin node decides: at once for an unrestricted alert; for a
    TLP RED or handling H2 alert, only with the originating agency's recorded permission."""
    request = await reshare.request(
        principal, alert_id, target_agency=body.target_agency, reason=body.reason
    )
    return request.to_json()


@router.get("/alerts/{alert_id}/reshare-requests")
async def list_reshare_requests(
    alert_id: AlertId, principal: CurrentPrincipal, reshare: Reshare
) -> dict[str, Any]:
    """On the origin node: every request for the alert (origin agency's analyst or the node's
    terminal). On a requesting node: that agency's own requests (its analyst)."""
    requests = await reshare.requests_for(principal, alert_id)
    return {"requests": [r.to_json() for r in requests]}


@router.post("/alerts/{alert_id}/reshare-requests/{request_id}/approve", status_code=202)
async def approve_reshare(
    alert_id: AlertId,
    request_id: AlertId,
    principal: CurrentPrincipal,
    reshare: Reshare,
    body: Annotated[DecisionBody | None, Body()] = None,
) -> dict[str, Any]:
    """An analyst of the origin agency, on the origin node, gives the originator's permission
    for a pending request; the node then seals the alert anew to the target agency."""
    decided = await reshare.decide(
        principal, alert_id, request_id, approve=True, reason=None if body is None else body.reason
    )
    return decided.to_json()


@router.post("/alerts/{alert_id}/reshare-requests/{request_id}/deny", status_code=202)
async def deny_reshare(
    alert_id: AlertId,
    request_id: AlertId,
    principal: CurrentPrincipal,
    reshare: Reshare,
    body: Annotated[DecisionBody | None, Body()] = None,
) -> dict[str, Any]:
    """An analyst of the origin agency, on the origin node, refuses a pending request."""
    decided = await reshare.decide(
        principal, alert_id, request_id, approve=False, reason=None if body is None else body.reason
    )
    return decided.to_json()
