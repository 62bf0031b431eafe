"""The analyst's pages: the live feed, one alert, and acknowledging or giving feedback on it.

The live feed is the same SSE stream the API serves (``services.feed_events``), here under the
session cookie instead of a bearer token; receipts go through the same ``AnalystReceipts`` as
the API's, so the page and the JSON API cannot drift apart.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from pydantic import ValidationError
from starlette.background import BackgroundTask

from blo_exchange.domain.alerts import ReceiptRequest
from blo_exchange.domain.directory import Node, Role
from blo_exchange.domain.ids import AlertId
from blo_exchange.domain.marking import GRADING_LABELS, HANDLING_LABELS, Tlp
from blo_exchange.domain.vocab import Outcome
from blo_exchange.errors import NotFound
from blo_exchange.ledger.entries import parse_leaf_input
from blo_exchange.ledger.ports import EntryFilter, LedgerReads
from blo_exchange.services.attachments import AttachmentService
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feed_events import (
    MAX_POSITION,
    SSE_HEADERS,
    FeedStreams,
    resume_position,
)
from blo_exchange.services.feedback import AnalystReceipts
from blo_exchange.web.deps import (
    Viewer,
    language_of,
    render,
    require,
    services_of,
    session_principal,
)
from blo_exchange.web.formatting import Formats
from blo_exchange.web.messages import catalogue
from blo_exchange.web.sessions import same_token

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Analyst = Annotated[Viewer, Depends(require(Role.ANALYST))]

_SCRIPT_MESSAGES = ("kind.", "feed.", "vocab.Substance.", "vocab.Unit.")


@router.get("/analyst")
async def feed_page(request: Request, viewer: Analyst) -> Response:
    t = catalogue(language_of(request))
    messages: dict[str, str] = {}
    for prefix in _SCRIPT_MESSAGES:
        messages |= t.subset(prefix)
    messages |= Formats(t.lang).symbols()
    node = services_of(request).get(Node)
    return render(
        request,
        "analyst_feed.html",
        viewer=viewer,
        messages=messages,
        border_pairs=node.border_pairs,
        tlps=[tlp.value for tlp in Tlp],
    )


@router.get("/analyst/stream")
async def stream(
    request: Request, viewer: Analyst, cursor: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0
) -> StreamingResponse:
    # ``cursor`` is for the page's own reconnects: a browser sends Last-Event-ID only when it
    # reconnects by itself, not after a refused (503) answer, when feed.js opens a new stream.
    last = request.headers.get("last-event-id")
    session_id = viewer.session.id

    async def admitted() -> bool:
        # Sign-out drops the session; revocation and expiry fail the principal's look-up.
        return await session_principal(request, session_id) is not None

    stream = (
        services_of(request)
        .get(FeedStreams)
        .open(
            viewer.principal,
            start=resume_position(cursor, last if last and len(last) <= 20 else None),
            disconnected=request.is_disconnected,
            admitted=admitted,
        )
    )
    return StreamingResponse(
        stream.frames,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
        background=BackgroundTask(stream.close),
    )


@router.get("/analyst/alerts/{alert_id}")
async def alert_page(request: Request, alert_id: AlertId, viewer: Analyst) -> Response:
    services = services_of(request)
    try:
        alert = await services.get(FeedService).get(viewer.principal, alert_id)
    except NotFound:
        return render(request, "error.html", viewer=viewer, status=404, problem="not_found")
    attachments = []
    if alert.get("attachments") and services.has(AttachmentService):
        opened = await services.get(FeedService).opened(viewer.principal, alert_id)
        attachments = await services.get(AttachmentService).listing(alert_id, opened)
    rows = await services.get(LedgerReads).entries(  # type: ignore[type-abstract]
        EntryFilter(alert_id=alert_id, agency=viewer.principal.agency_id), after=-1, limit=200
    )
    receipts = [
        fields
        for _, leaf in rows
        if (fields := parse_leaf_input(leaf))["type"] in ("alert_acknowledged", "feedback")
        and fields.get("actor_agency") == viewer.principal.agency_id
    ]
    return render(
        request,
        "analyst_alert.html",
        viewer=viewer,
        alert=alert,
        header=alert["header"],
        case=alert["case"],
        nominal=alert.get("nominal"),
        attachments=attachments,
        receipts=receipts,
        sent=request.query_params.get("sent"),
        outcomes=[o.value for o in Outcome],
        handling=HANDLING_LABELS,
        grading=GRADING_LABELS,
    )


@router.post("/analyst/alerts/{alert_id}/receipts")
async def receipt(request: Request, alert_id: AlertId, viewer: Analyst) -> Response:
    form = await request.form()
    if not same_token(form.get("csrf"), viewer.csrf):
        return render(request, "error.html", viewer=viewer, status=403, problem="csrf")
    outcome = form.get("outcome")
    try:
        body = ReceiptRequest.model_validate(
            {"type": "feedback", "outcome": outcome} if outcome else {"type": "acknowledged"}
        )
    except ValidationError:
        return render(request, "error.html", viewer=viewer, status=422, problem="not_found")
    try:
        await services_of(request).get(AnalystReceipts).send(viewer.principal, alert_id, body)
    except NotFound:
        return render(request, "error.html", viewer=viewer, status=404, problem="not_found")
    return RedirectResponse(f"/analyst/alerts/{alert_id}?sent={body.type}", status_code=303)
