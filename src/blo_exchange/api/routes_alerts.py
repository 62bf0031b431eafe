"""``/v1/alerts``: submit (one or a batch), read one, acknowledge or give feedback."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Request, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from blo_exchange.api.deps import CurrentPrincipal, service
from blo_exchange.api.limits import RateLimiter
from blo_exchange.api.strict_json import StrictJsonRoute
from blo_exchange.domain.alerts import (
    ALERT_SUBMISSION_ADAPTER,
    AlertSubmission,
    ReceiptRequest,
)
from blo_exchange.domain.directory import Role
from blo_exchange.domain.ids import AlertId
from blo_exchange.errors import BloExchangeError, Forbidden, http_status
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feedback import AnalystReceipts
from blo_exchange.services.ingest import IngestService, Submission

__all__ = ["AcceptedAlert", "BatchRequest", "router"]

router = APIRouter(prefix="/v1", tags=["alerts"], route_class=StrictJsonRoute)

Ingest = Annotated[IngestService, Depends(service(IngestService))]
Feed = Annotated[FeedService, Depends(service(FeedService))]
Receipts = Annotated[AnalystReceipts, Depends(service(AnalystReceipts))]

IDEMPOTENCY_KEY = r"^[A-Za-z0-9._:\-]{8,128}$"
MAX_BATCH = 500


class AcceptedAlert(BaseModel):
    alert_id: str
    border_pair: str
    kind: str
    recipients: list[str]
    agreement_ids: list[str]
    stream_seq: int
    created_at: str


@router.post("/alerts", status_code=202, response_model=AcceptedAlert)
async def submit_alert(
    submission: Annotated[AlertSubmission, Body()],
    principal: CurrentPrincipal,
    ingest: Ingest,
    response: Response,
    idempotency_key: Annotated[str, Header(pattern=IDEMPOTENCY_KEY)],
) -> dict[str, Any]:
    """Seal, sign and publish an alert; 202 once JetStream has it on disk."""
    accepted = await ingest.submit(principal, submission, idempotency_key)
    if accepted.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return accepted.response


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    idempotency_key: str = Field(pattern=IDEMPOTENCY_KEY)
    alert: dict[str, Any]


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alerts: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH)


@router.post("/alerts:batch", status_code=200)
async def submit_batch(
    request: Request, batch: BatchRequest, principal: CurrentPrincipal, ingest: Ingest
) -> dict[str, Any]:
    """Each item is accepted or refused on its own; one bad report does not block the rest."""
    if principal.role is not Role.TERMINAL:
        raise Forbidden("only a terminal of this node may post alerts here")
    # Every item counts against the rate limit, as if posted alone (the request paid for one).
    limiter: RateLimiter = request.app.state.limiter
    limiter.charge(principal.id, len(batch.alerts) - 1)
    results: list[dict[str, Any]] = [{} for _ in batch.alerts]
    valid: list[tuple[int, tuple[Submission, str]]] = []
    for index, item in enumerate(batch.alerts):
        try:
            submission = ALERT_SUBMISSION_ADAPTER.validate_python(item.alert)
        except ValidationError as exc:
            first = exc.errors()[0]
            field = ".".join(str(p) for p in first["loc"])
            results[index] = {"index": index, "status": 422, "detail": f"{field}: {first['msg']}"}
        else:
            valid.append((index, (submission, item.idempotency_key)))
    # The bulk lane: partners deliver live alerts before a batch's items. An unexpected failure
    # (not a refusal) fails the request, once every other item has finished.
    answers = await ingest.submit_batch(principal, [pair for _, pair in valid])
    for (index, _), answer in zip(valid, answers, strict=True):
        if isinstance(answer, BloExchangeError):
            status, _ = http_status(answer)
            results[index] = {"index": index, "status": status, "detail": str(answer)}
        else:
            results[index] = {"index": index, "status": 202, **answer.response}
    return {"results": results}


@router.get("/alerts/{alert_id}")
async def get_alert(alert_id: AlertId, principal: CurrentPrincipal, feed: Feed) -> dict[str, Any]:
    """The decrypted alert, for the origin agency's terminal or a recipient agency's analyst."""
    return await feed.get(principal, alert_id)


@router.post("/alerts/{alert_id}/receipts", status_code=202)
async def post_receipt(
    alert_id: AlertId, body: ReceiptRequest, principal: CurrentPrincipal, receipts: Receipts
) -> dict[str, Any]:
    """An analyst acknowledges an alert or says what acting on it gave; signed and ledgered."""
    return await receipts.send(principal, alert_id, body)
