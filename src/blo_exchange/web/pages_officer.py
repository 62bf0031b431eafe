"""The officer's pages: file a seizure or risk alert, see where it went and who has read it.

The form page reads nothing from the ledger, so it is quick to come; the sent alerts have their
own page. That list stays current without polling from the phone: the page holds one
Server-Sent Events stream, which says only when the list's version changes (the node checks the
ledger's size every couple of seconds and recomputes the list only when it grew), and the page
then fetches the list once.
"""

from __future__ import annotations

import asyncio
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse
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
from blo_exchange.web.forms import (
    field_anchor,
    field_errors,
    field_label,
    open_sections,
    submission_from_form,
)
from blo_exchange.web.ledger_view import SentAlert, sent_alert
from blo_exchange.web.messages import Catalogue, catalogue
from blo_exchange.web.pages_attachments import file_limits, form_attachments
from blo_exchange.web.sessions import same_token

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Officer = Annotated[Viewer, Depends(require(Role.TERMINAL))]

SENT_SHOWN = 20
SENT_WINDOW = 5000  # the newest entries searched for this office's shares
FIRST_SPAN = 256  # searched first; widened fourfold until SENT_SHOWN shares or SENT_WINDOW
CHECK_SECONDS = 2.0  # how often a sent-list stream looks at the ledger's size (in the node)
HEARTBEAT_SECONDS = 25.0  # a comment line now and then keeps proxies from closing the stream

_VOCABULARIES: dict[str, type[Vocabulary]] = {
    "substance": Substance,
    "form": Form,
    "unit": Unit,
    "concealment": ConcealmentMethod,
    "detection": DetectionMethod,
    "conveyance": ConveyanceMode,
    "person_role": PersonRole,
}
# Every field name the form holds (item rows are numbered; the first is here), for the error
# summary's links: each must land on a field that exists.
FORM_FIELDS = (
    "crossing_point",
    "border_pair",
    "handling.scheme",
    "handling.code",
    "handling.conditions",
    "grading.scheme",
    "grading.source",
    "grading.information",
    "seizure.case.observed_at",
    "seizure.case.detection_method",
    "seizure.case.concealment.method",
    "seizure.case.concealment.place",
    "seizure.case.conveyance.mode",
    "seizure.case.conveyance.vehicle_type",
    "seizure.case.conveyance.registration_country",
    "seizure.case.conveyance.identifier",
    "seizure.case.route.origin",
    "seizure.case.route.departure",
    "seizure.case.route.destination",
    "seizure.case.narrative.text",
    "seizure.case.narrative.lang",
    "risk.case.subject",
    "risk.case.indicators",
    "risk.case.modus_operandi",
    "risk.case.targets.0.type",
    "risk.case.targets.0.value",
    "risk.case.valid_until",
    "risk.case.recommended_action",
    "risk.case.narrative.text",
    "risk.case.narrative.lang",
    "nominal.persons.0.role",
    "nominal.persons.0.name",
    "nominal.persons.0.birth_date",
    "nominal.persons.0.nationality",
    "nominal.persons.0.document.type",
    "nominal.persons.0.document.number",
)
ITEM_FIELDS = ("substance", "form", "quantity", "unit", "package_count", "cas_number")
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
    attachments: list[str] | None = None,
) -> Response:
    t = catalogue(language_of(request))
    values = dict(values or {})
    values.setdefault("kind", "seizure")
    values.setdefault("tlp", "AMBER")
    values.setdefault("handling.scheme", "none")
    values.setdefault("seizure.case.narrative.lang", t.lang)
    values.setdefault("risk.case.narrative.lang", t.lang)
    rows = {int(k.split(".")[3]) for k in values if k.startswith("seizure.case.items.")}
    item_rows = range(max(rows, default=0) + 1)
    errors = errors or {}
    fields = [*FORM_FIELDS] + [
        f"seizure.case.items.{n}.{f}" for n in item_rows for f in ITEM_FIELDS
    ]
    return render(
        request,
        "officer.html",
        viewer=viewer,
        status=status,
        return_to="/officer",
        values=values,
        errors=errors,
        error_labels={name: field_label(name, t) for name in errors},
        anchors={name: field_anchor(name, fields) for name in errors},
        open_sections=open_sections(values, errors),
        item_rows=item_rows,
        # A fresh key per rendering: a double click replays, a corrected form is a new request.
        idempotency_key=f"web-{uuid.uuid4()}",
        options=_options(t),
        tlps=[tlp.value for tlp in Tlp],
        handling=HANDLING_LABELS,
        grading=GRADING_LABELS,
        attachments=attachments or [],
        file_limits=file_limits(request),
    )


@router.get("/officer")
async def officer_page(request: Request, viewer: Officer) -> Response:
    return _form_page(request, viewer)


@router.post("/officer/alerts")
async def file_alert(request: Request, viewer: Officer) -> Response:
    form = await request.form()
    try:  # the files a form carried are spooled to disk: let go of them once read
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        if not same_token(values.pop("csrf", None), viewer.csrf):
            return render(request, "error.html", viewer=viewer, status=403, problem="csrf")
        key = values.pop("idempotency_key", "") or f"web-{uuid.uuid4()}"
        t = catalogue(language_of(request))
        for name in ("attachments", "keep_location"):
            values.pop(name, None)
        try:
            attachments = await form_attachments(request, viewer, form)
        except BloExchangeError as exc:
            errors = {"attachments": t("officer.upload_failed", detail=str(exc))}
            return _form_page(
                request, viewer, values=values, errors=errors, status=http_status(exc)[0]
            )
    finally:
        await form.close()
    document = submission_from_form(values) | {"attachments": attachments}
    try:
        submission = parse_alert_submission(document)
    except ValidationError as exc:
        errors = field_errors(exc, document["kind"], t)
        return _form_page(
            request, viewer, values=values, errors=errors, status=422, attachments=attachments
        )
    ingest = services_of(request).get(IngestService)
    try:
        accepted = await ingest.submit(viewer.principal, submission, key)
    except BloExchangeError as exc:
        status, _ = http_status(exc)
        detail = str(exc) if status != 500 else "internal error"
        errors = {"": t("officer.not_sent", detail=detail)}
        return _form_page(
            request, viewer, values=values, errors=errors, status=status, attachments=attachments
        )
    return render(
        request,
        "officer_sent.html",
        viewer=viewer,
        status=201,
        return_to="/officer",
        accepted=accepted.response,
        replayed=accepted.replayed,
        sent=[],
        only=accepted.response["alert_id"],
        version="",  # the ledger has not caught up yet: the stream's first version differs
    )


def _only(request: Request) -> str | None:
    """``?alert=`` as a canonical alert id, or None (a malformed one narrows nothing)."""
    only = request.query_params.get("alert") or None
    try:
        return None if only is None else str(uuid.UUID(only))
    except ValueError:
        return None


def _version(sent: list[SentAlert]) -> str:
    """A short digest of what the sent list shows: it changes exactly when the list does."""
    return hashlib.sha256(repr(sent).encode()).hexdigest()[:16]


@router.get("/officer/sent")
async def sent_page(request: Request, viewer: Officer) -> Response:
    sent = await _sent(request, viewer, only=None)
    return render(
        request,
        "officer_sent_list.html",
        viewer=viewer,
        sent=sent,
        only=None,
        version=_version(sent),
    )


@router.get("/officer/sent/table")
async def sent_fragment(request: Request, viewer: Officer) -> Response:
    """The sent-alerts list alone, for officer.js to swap in; ``?alert=`` narrows it to one."""
    only = _only(request)
    sent = await _sent(request, viewer, only=only)
    return render(
        request, "sent_table.html", viewer=viewer, sent=sent, only=only, version=_version(sent)
    )


@router.get("/officer/sent/events")
async def sent_events(request: Request, viewer: Officer) -> StreamingResponse:
    """SSE: ``event: version`` with the list's version, at once and whenever it changes."""
    only = _only(request)
    ledger = _ledger(request)

    async def events() -> AsyncIterator[bytes]:
        yield b"retry: 10000\n\n"
        size, version, quiet = -1, "", 0.0
        while not await request.is_disconnected():
            now = await ledger.size()
            if now != size:
                size = now
                fresh = _version(await _sent(request, viewer, only=only))
                if fresh != version:
                    version, quiet = fresh, 0.0
                    yield f"event: version\ndata: {version}\n\n".encode()
            if quiet >= HEARTBEAT_SECONDS:
                quiet = 0.0
                yield b": keep-alive\n\n"
            await asyncio.sleep(CHECK_SECONDS)
            quiet += CHECK_SECONDS

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


@router.get("/officer/alerts/{alert_id}")
async def sent_alert_page(request: Request, alert_id: AlertId, viewer: Officer) -> Response:
    sent = await _sent(request, viewer, only=alert_id)
    accepted: dict[str, Any] = {"alert_id": alert_id, "recipients": []}
    if sent:
        accepted["recipients"] = [r.agency for r in sent[0].recipients]
    return render(
        request,
        "officer_sent.html",
        viewer=viewer,
        return_to=request.url.path,
        accepted=accepted,
        replayed=False,
        sent=sent,
        only=alert_id,
        version=_version(sent),
    )


class SentCache:
    """The last sent list computed per office and filter, with the ledger size it was read at.

    The ledger only grows, so while its size is unchanged the list is too: the stream's checks
    and the fetch they trigger, and every officer of one post, share one reading.
    """

    def __init__(self, *, entries: int = 256) -> None:
        self._entries = entries
        self._lists: dict[tuple[str, str, str | None], tuple[int, list[SentAlert]]] = {}

    def get(self, key: tuple[str, str, str | None], size: int) -> list[SentAlert] | None:
        found = self._lists.get(key)
        return found[1] if found is not None and found[0] == size else None

    def put(self, key: tuple[str, str, str | None], size: int, sent: list[SentAlert]) -> None:
        self._lists.pop(key, None)
        if len(self._lists) >= self._entries:  # the oldest first: dicts keep insertion order
            del self._lists[next(iter(self._lists))]
        self._lists[key] = (size, sent)


def _ledger(request: Request) -> LedgerReads:
    return services_of(request).get(LedgerReads)  # type: ignore[type-abstract]


def _sent_cache(request: Request) -> SentCache:
    state = request.app.state
    if getattr(state, "web_sent_cache", None) is None:
        state.web_sent_cache = SentCache()
    cache: SentCache = state.web_sent_cache
    return cache


async def _sent(request: Request, viewer: Viewer, *, only: str | None) -> list[SentAlert]:
    """This office's sent list, read once per ledger size (``SentCache``)."""
    ledger = _ledger(request)
    size = await ledger.size()
    key = (viewer.principal.agency_id or "", viewer.principal.node_id or "", only)
    cache = _sent_cache(request)
    sent = cache.get(key, size)
    if sent is None:
        sent = await _read_sent(ledger, viewer, only=only, size=size)
        cache.put(key, size, sent)
    return sent


async def _read_sent(
    ledger: LedgerReads, viewer: Viewer, *, only: str | None, size: int
) -> list[SentAlert]:
    """This office's latest shared alerts (newest first), each with its recipients' states.

    Read from the ledger, so an alert appears once the ledger writer has appended its share
    (well under a second) and its states are the ones every auditor sees. The newest entries are
    searched first, so when the office's shares are recent (they usually are) the cost follows
    what is shown rather than the ledger's size.
    """
    wanted = EntryFilter(agency=viewer.principal.agency_id, type="alert_shared", alert_id=only)
    span = FIRST_SPAN
    while True:
        rows = await ledger.entries(wanted, after=max(-1, size - span - 1), limit=span + 1)
        shared = [
            (index, fields)
            for index, leaf in rows
            if (fields := parse_leaf_input(leaf)).get("actor_node") == viewer.principal.node_id
        ]
        if len(shared) >= SENT_SHOWN or span >= min(size, SENT_WINDOW):
            break
        span = min(span * 4, SENT_WINDOW)
    result = []
    # One after another on purpose: gathered, 20 queries take 20 pooled connections at once
    # and open new ones past the pool's size, which is slower than waiting in turn.
    for index, fields in reversed(shared[-SENT_SHOWN:]):
        later = await ledger.entries(
            EntryFilter(alert_id=str(fields["alert_id"])), after=index, limit=500
        )
        result.append(sent_alert(fields, [parse_leaf_input(leaf) for _, leaf in later]))
    return result
