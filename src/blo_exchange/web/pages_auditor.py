"""The auditor's pages: the ledger browser, the sharing matrix, the latest signed checkpoint, and
the JSON the in-browser verifier (``static/ledger.js``) fetches.

The proof and checkpoint endpoints are the API's own route functions under the session cookie,
so the browser checks exactly what ``blo-exchange ledger verify`` checks.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response

from blo_exchange.domain.directory import Role
from blo_exchange.ledger.entries import ENTRY_TYPES, entry_json
from blo_exchange.ledger.ports import EntryFilter
from blo_exchange.ledger.reads import AuditorReads, checkpoint_json
from blo_exchange.web.deps import Viewer, render, require, services_of
from blo_exchange.web.ledger_view import sharing_matrix

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Auditor = Annotated[Viewer, Depends(require(Role.AUDITOR))]

PAGE = 100
_CHECKS: Final[dict[str, Callable[[str], object]]] = {
    "agency": re.compile(r"[a-z]{2}(-[a-z0-9]+)+").fullmatch,
    "border_pair": re.compile(r"[A-Z]{2}-[A-Z]{2}").fullmatch,
    "kind": re.compile(r"seizure|risk|feedback").fullmatch,
    "type": lambda v: v in ENTRY_TYPES,
    "alert_id": lambda v: _is_uuid(v),
    "since": lambda v: _date(v) is not None,
    "until": lambda v: _date(v) is not None,
}


def _is_uuid(value: str) -> bool:
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _date(value: str) -> datetime | None:
    try:
        return datetime.strptime(value, "%Y-%m-%d").replace(tzinfo=UTC)
    except ValueError:
        return None


@router.get("/auditor")
async def ledger_page(request: Request, viewer: Auditor) -> Response:
    reads = services_of(request).get(AuditorReads)
    given = {k: request.query_params.get(k, "").strip() for k in _CHECKS}
    filters = {k: v for k, v in given.items() if v and _CHECKS[k](v)}
    invalid = sorted(k for k, v in given.items() if v and k not in filters)
    cursor_text = request.query_params.get("cursor", "-1")
    cursor = int(cursor_text) if cursor_text.lstrip("-").isdigit() else -1
    since, until = (_date(filters[k]) if k in filters else None for k in ("since", "until"))
    rows = await reads.entries(
        EntryFilter(
            agency=filters.get("agency"),
            border_pair=filters.get("border_pair"),
            kind=filters.get("kind"),
            type=filters.get("type"),
            alert_id=filters.get("alert_id"),
            since=since,
            until=until,
        ),
        after=max(cursor, -1),
        limit=PAGE,
    )
    entries = [entry_json(index, leaf) for index, leaf in rows]
    next_query = None
    if len(rows) == PAGE:
        next_query = request.url.include_query_params(cursor=rows[-1][0]).query
    checkpoint = await reads.store.latest_checkpoint()
    matrix = sharing_matrix(await reads.sharing())
    # The page is an auditor's read of the ledger like any API call: recorded before it is sent.
    await _record(request, viewer)
    return render(
        request,
        "auditor.html",
        viewer=viewer,
        given=given,
        invalid=invalid,
        entries=entries,
        next_query=next_query,
        entry_types=sorted(ENTRY_TYPES),
        matrix=matrix,
        checkpoint=checkpoint,
    )


async def _record(request: Request, viewer: Viewer) -> None:
    await (
        services_of(request)
        .get(AuditorReads)
        .record(principal_id=viewer.principal.id, path=request.url.path, query=request.url.query)
    )


@router.get("/auditor/checkpoint.json")
async def checkpoint(request: Request, viewer: Auditor) -> dict[str, Any]:
    answer = checkpoint_json(await services_of(request).get(AuditorReads).latest_cosigned())
    await _record(request, viewer)
    return answer


@router.get("/auditor/inclusion.json")
async def inclusion_json(
    request: Request,
    viewer: Auditor,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    answer = await services_of(request).get(AuditorReads).inclusion_proof(index, tree_size)
    await _record(request, viewer)
    return answer
