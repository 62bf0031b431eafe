"""The officer's pages: file a seizure or risk alert, see where it went and who has read it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import ValidationError

from blo_exchange.domain.alerts import parse_alert_submission
from blo_exchange.domain.directory import Role
from blo_exchange.domain.ids import AlertId
from blo_exchange.domain.marking import GRADING_LABELS, HANDLING_LABELS, Tlp
from blo_exchange.domain.vocab import (
    ConcealmentMethod,
    ConveyanceMode,
    DetectionMethod,
    Form,
    PersonRole,
    Substance,
    Unit,
    Vocabulary,
)
from blo_exchange.errors import BloExchangeError, http_status
from blo_exchange.ledger.entries import parse_leaf_input
from blo_exchange.ledger.ports import EntryFilter, LedgerReads
from blo_exchange.services.ingest import IngestService
from blo_exchange.web.deps import Viewer, language_of, render, require, services_of
from blo_exchange.web.forms import field_errors, field_label, submission_from_form
from blo_exchange.web.ledger_view import SentAlert, sent_alert
from blo_exchange.web.messages import Catalogue, catalogue
from blo_exchange.web.sessions import same_token

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Officer = Annotated[Viewer, Depends(require(Role.TERMINAL))]

SENT_SHOWN = 20
SENT_WINDOW = 5000  # the newest entries searched for this office's shares

_VOCABULARIES: dict[str, type[Vocabulary]] = {
    "substance": Substance,
    "form": Form,
    "unit": Unit,
    "concealment": ConcealmentMethod,
    "detection": DetectionMethod,
    "conveyance": ConveyanceMode,
    "person_role": PersonRole,
}
TARGET_TYPES = ("plate", "route", "company", "person", "phone", "document", "container", "other")
DOCUMENT_TYPES = ("passport", "id_card", "driving_licence", "other")


def _options(t: Catalogue) -> dict[str, list[tuple[str, str]]]:
    options = {
        name: [(m.value, t(f"vocab.{vocab.__name__}.{m.value}")) for m in vocab]
        for name, vocab in _VOCABULARIES.items()
    }
    options["target"] = [(v, t(f"target.{v}")) for v in TARGET_TYPES]
    options["document"] = [(v, t(f"document.{v}")) for v in DOCUMENT_TYPES]
    return options


def _form_page(
    request: Request,
    viewer: Viewer,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    sent: list[SentAlert] | None = None,
) -> Response:
    t = catalogue(language_of(request))
    values = dict(values or {})
    values.setdefault("kind", "seizure")
    values.setdefault("tlp", "AMBER")
    values.setdefault("handling.scheme", "none")
    values.setdefault("seizure.case.narrative.lang", t.lang)
    values.setdefault("risk.case.narrative.lang", t.lang)
    rows = {int(k.split(".")[3]) for k in values if k.startswith("seizure.case.items.")}
    return render(
        request,
        "officer.html",
        viewer=viewer,
        status=status,
        return_to="/officer",
        values=values,
        errors=errors or {},
        error_labels={name: field_label(name, t) for name in errors or {}},
        item_rows=range(max(rows, default=0) + 1),
        # A fresh key per rendering: a double click replays, a corrected form is a new request.
        idempotency_key=f"web-{uuid.uuid4()}",
        options=_options(t),
        tlps=[tlp.value for tlp in Tlp],
        handling=HANDLING_LABELS,
        grading=GRADING_LABELS,
        sent=sent or [],
    )


@router.get("/officer")
async def officer_page(request: Request, viewer: Officer) -> Response:
    return _form_page(request, viewer, sent=await _sent(_ledger(request), viewer, only=None))


@router.post("/officer/alerts")
async def file_alert(request: Request, viewer: Officer) -> Response:
    form = await request.form()
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    if not same_token(values.pop("csrf", None), viewer.csrf):
        return render(request, "error.html", viewer=viewer, status=403, problem="csrf")
    key = values.pop("idempotency_key", "") or f"web-{uuid.uuid4()}"
    t = catalogue(language_of(request))
    document = submission_from_form(values)
    try:
        submission = parse_alert_submission(document)
    except ValidationError as exc:
        errors = field_errors(exc, document["kind"], t)
        return _form_page(request, viewer, values=values, errors=errors, status=422)
    ingest = services_of(request).get(IngestService)
    try:
        accepted = await ingest.submit(viewer.principal, submission, key)
    except BloExchangeError as exc:
        status, _ = http_status(exc)
        detail = str(exc) if status != 500 else "internal error"
        errors = {"": t("officer.not_sent", detail=detail)}
        return _form_page(request, viewer, values=values, errors=errors, status=status)
    return render(
        request,
        "officer_sent.html",
        viewer=viewer,
        status=201,
        return_to="/officer",
        accepted=accepted.response,
        replayed=accepted.replayed,
    )


@router.get("/officer/sent")
async def sent_fragment(request: Request, viewer: Officer) -> Response:
    """The sent-alerts table alone, for officer.js to swap in; ``?alert=`` narrows it to one."""
    only = request.query_params.get("alert") or None
    try:
        only = None if only is None else str(uuid.UUID(only))
    except ValueError:
        only = None
    sent = await _sent(_ledger(request), viewer, only=only)
    return render(request, "sent_table.html", viewer=viewer, sent=sent, only=only)


@router.get("/officer/alerts/{alert_id}")
async def sent_alert_page(request: Request, alert_id: AlertId, viewer: Officer) -> Response:
    sent = await _sent(_ledger(request), viewer, only=alert_id)
    accepted: dict[str, Any] = {"alert_id": alert_id, "recipients": []}
    if sent:
        accepted["recipients"] = [r.agency for r in sent[0].recipients]
    response = render(
        request,
        "officer_sent.html",
        viewer=viewer,
        return_to=request.url.path,
        accepted=accepted,
        replayed=False,
    )
    return response


def _ledger(request: Request) -> LedgerReads:
    return services_of(request).get(LedgerReads)  # type: ignore[type-abstract]


async def _sent(ledger: LedgerReads, viewer: Viewer, *, only: str | None) -> list[SentAlert]:
    """This office's latest shared alerts (newest first), each with its recipients' states.

    Read from the ledger, so an alert appears once the ledger writer has appended its share
    (well under a second) and its states are the ones every auditor sees.
    """
    after = max(-1, await ledger.size() - SENT_WINDOW)
    rows = await ledger.entries(
        EntryFilter(agency=viewer.principal.agency_id, type="alert_shared", alert_id=only),
        after=after,
        limit=SENT_WINDOW,
    )
    shared = [
        (index, fields)
        for index, leaf in rows
        if (fields := parse_leaf_input(leaf)).get("actor_node") == viewer.principal.node_id
    ][-SENT_SHOWN:]
    result = []
    for index, fields in reversed(shared):
        later = await ledger.entries(
            EntryFilter(alert_id=str(fields["alert_id"])), after=index, limit=500
        )
        result.append(sent_alert(fields, [parse_leaf_input(leaf) for _, leaf in later]))
    return result
