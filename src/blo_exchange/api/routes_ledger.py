"""``/v1/ledger``: the auditors' view of who shared what with whom [contract,
docs/contracts/api.md].

Every request an auditor makes here is itself recorded (``ledger_queried``): once the answer is
computed, and before it is sent, the node publishes its signed record of the query on
``blo.v1.ledger.queries`` for the ledger writer. If JetStream does not acknowledge that record,
the auditor gets a 503 instead of the answer: no auditor reads the ledger unaudited. Requests
refused before the caller is known to be an auditor (401, 403) are not recorded.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response, StreamingResponse
from fastapi.routing import APIRoute

from blo_exchange.api.deps import Auditor, service, services_of
from blo_exchange.domain.ids import AgencyId, AlertId, BorderPair, UtcTimestamp
from blo_exchange.domain.ledger import LedgerEntryType
from blo_exchange.ledger.entries import entry_json
from blo_exchange.ledger.ports import EntryFilter
from blo_exchange.ledger.reads import AuditorReads, checkpoint_json
from blo_exchange.ledger.retention_report import RetentionAudit

__all__ = ["router"]

_AUDITOR_STATE = "ledger_auditor"


async def _note_auditor(request: Request, auditor: Auditor) -> None:
    """Every route here needs an auditor; remember who, for the record made after the answer."""
    setattr(request.state, _AUDITOR_STATE, auditor.id)


async def _record_query(request: Request) -> None:
    principal_id = getattr(request.state, _AUDITOR_STATE, None)
    if principal_id is not None:
        # BusError (-> 503) when not acknowledged: the answer computed above is then not sent.
        await (
            services_of(request)
            .get(AuditorReads)
            .record(principal_id=principal_id, path=request.url.path, query=request.url.query)
        )


class _AuditedRoute(APIRoute):
    """A route whose answer goes out only once the auditor's query has been recorded."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def audited(request: Request) -> Response:
            try:
                response = await handler(request)
            except Exception:
                # A refused query (404, 422…) is still one the auditor made.
                await _record_query(request)
                raise
            await _record_query(request)
            return response

        return audited


router = APIRouter(
    prefix="/v1/ledger",
    tags=["ledger"],
    dependencies=[Depends(_note_auditor)],
    route_class=_AuditedRoute,
)

_MAX_INDEX = 2**63 - 1  # ledger indexes are Postgres bigints

Reads = Annotated[AuditorReads, Depends(service(AuditorReads))]


@router.get(
    "/entries",
    response_model=None,
    responses={200: {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def entries(
    auditor: Auditor,
    reads: Reads,
    agency: AgencyId | None = None,
    border_pair: BorderPair | None = None,
    kind: Annotated[str | None, Query(pattern="^(seizure|risk|feedback)$")] = None,
    type: LedgerEntryType | None = None,
    alert_id: AlertId | None = None,
    since: UtcTimestamp | None = None,
    until: UtcTimestamp | None = None,
    cursor: Annotated[int, Query(ge=-1, le=_MAX_INDEX)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> StreamingResponse:
    """Entries with index > ``cursor`` matching every given filter, in ledger order."""
    rows = await reads.entries(
        EntryFilter(
            agency=agency,
            border_pair=border_pair,
            kind=kind,
            type=type,
            alert_id=alert_id,
            since=since,
            until=until,
        ),
        after=cursor,
        limit=limit,
    )
    next_cursor = rows[-1][0] if len(rows) == limit else None
    return StreamingResponse(_entries_json(rows, next_cursor), media_type="application/json")


_ENTRIES_A_CHUNK = 50


async def _entries_json(
    rows: Sequence[tuple[int, bytes]], next_cursor: int | None
) -> AsyncIterator[bytes]:
    """``{"entries": [...], "next_cursor": ...}``, written as FastAPI writes a returned dict
    (compact, UTF-8), a chunk of entries at a time: a page of 1000 entries with their records
    (about 13 MB of JSON) built whole, with its dicts and strings, took a node 40-50 MB
    (``blo-fotehobod-tj``, 130 -> 178 MB, under an auditor paging at 4/s; issue 14)."""
    yield b'{"entries":['
    for start in range(0, len(rows), _ENTRIES_A_CHUNK):
        chunk = rows[start : start + _ENTRIES_A_CHUNK]
        yield (b"," if start else b"") + b",".join(
            _compact(entry_json(index, leaf)) for index, leaf in chunk
        )
    yield b'],"next_cursor":' + _compact(next_cursor) + b"}"


def _compact(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


# --- checkpoints, proofs, export ------------------------------------------------------------


@router.get("/checkpoint")
async def checkpoint(auditor: Auditor, reads: Reads) -> dict[str, Any]:
    """The latest signed checkpoint."""
    return checkpoint_json(await reads.latest_cosigned())


@router.get("/witnesses")
async def witnesses(auditor: Auditor, reads: Reads) -> dict[str, Any]:
    """The witnesses' cosigner keys and any fork evidence they published."""
    return await reads.witnesses()


@router.get("/proofs/inclusion")
async def inclusion_proof(
    auditor: Auditor,
    reads: Reads,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int, Query(ge=1)],
) -> dict[str, Any]:
    """The RFC 9162 audit path of entry ``index`` in the tree of ``tree_size`` entries."""
    return await reads.inclusion_proof(index, tree_size)


@router.get("/proofs/consistency")
async def consistency_proof(
    auditor: Auditor,
    reads: Reads,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
) -> dict[str, Any]:
    """The RFC 9162 consistency proof from the tree of ``first`` entries to ``second``."""
    return await reads.consistency_proof(first, second)


@router.get("/export")
async def export(
    auditor: Auditor, reads: Reads, cosigned: Annotated[int, Query(ge=0, le=100)] = 0
) -> dict[str, Any]:
    """Everything ``blo-exchange ledger verify`` needs, up to the latest checkpoint (with
    ``cosigned``: the latest one that many witnesses cosigned)."""
    return await reads.export(cosigned=cosigned)


@router.get(
    "/sharing",
    response_model=None,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def sharing(
    auditor: Auditor,
    reads: Reads,
    since: UtcTimestamp | None = None,
    until: UtcTimestamp | None = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """Who shared with whom: ``alert_shared`` entries counted by agency pair, border pair, kind."""
    counts = await reads.sharing(since=since, until=until)
    rows = [
        {
            "origin_agency": c.origin_agency,
            "recipient_agency": c.recipient_agency,
            "border_pair": c.border_pair,
            "kind": c.kind,
            "count": c.count,
        }
        for c in counts
    ]
    if format == "csv":
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=list(_SHARING_COLUMNS), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        return Response(out.getvalue(), media_type="text/csv; charset=utf-8")
    return {"since": since, "until": until, "sharing": rows}


_SHARING_COLUMNS = ("origin_agency", "recipient_agency", "border_pair", "kind", "count")


@router.get("/retention")
async def retention(
    auditor: Auditor,
    audit: Annotated[RetentionAudit, Depends(service(RetentionAudit))],
    at: UtcTimestamp | None = None,
) -> dict[str, Any]:
    """Per agreement: each nominal block erased (by which node, when, its ledger index) and
    each overdue at ``at`` (default now): retention over and no ``nominal_erased`` receipt from
    a recipient node that received it (docs/retention.md)."""
    return await audit.report(at=at)
