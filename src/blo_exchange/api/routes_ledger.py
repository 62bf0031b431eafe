"""``/v1/ledger``: the auditors' view of who shared what with whom [contract, DESIGN §5].

Every request an auditor makes here is itself recorded (``ledger_queried``): once the answer is
computed, and before it is sent, the node publishes its signed record of the query on
``blo.v1.ledger.queries`` for the ledger writer. If JetStream does not acknowledge that record,
the auditor gets a 503 instead of the answer: no auditor reads the ledger unaudited. Requests
refused before the caller is known to be an auditor (401, 403) are not recorded.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute

from blo_exchange.api.deps import Auditor, Runtime, get_runtime
from blo_exchange.api.problems import problem
from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.crypto.note import NoteError, NoteVerifier, open_checkpoint
from blo_exchange.db.ledger_store import EntryFilter, StoredCheckpoint
from blo_exchange.domain.ids import AgencyId, AlertId, BorderPair, UtcTimestamp, utc_now
from blo_exchange.errors import NotFound
from blo_exchange.ledger.audit import LedgerQueryRecorder
from blo_exchange.ledger.entries import entry_json
from blo_exchange.ledger.verify import build_bundle

__all__ = ["record_ledger_read", "router"]

_AUDITOR_STATE = "ledger_auditor"


async def _note_auditor(request: Request, auditor: Auditor) -> None:
    """Every route here needs an auditor; remember who, for the record made after the answer."""
    setattr(request.state, _AUDITOR_STATE, auditor.id)


async def _record_query(request: Request) -> None:
    principal_id = getattr(request.state, _AUDITOR_STATE, None)
    if principal_id is not None:
        await record_ledger_read(request, principal_id)


async def record_ledger_read(request: Request, principal_id: str) -> None:
    """Record an auditor's read of the ledger; also for the web pages that read it."""
    runtime = get_runtime(request)
    recorder = LedgerQueryRecorder(
        node=runtime.node, signer=runtime.keys.signing, publisher=runtime.bus, clock=utc_now
    )
    # BusError (-> 503) when not acknowledged: the answer computed above is then not sent.
    await recorder.record(principal_id=principal_id, path=request.url.path, query=request.url.query)


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

EntryType = Literal[
    "alert_shared",
    "alert_delivered",
    "alert_acknowledged",
    "feedback",
    "alert_rejected",
    "ledger_queried",
    "key_registered",
    "key_revoked",
    "agreement_changed",
    "reshare_requested",
    "reshare_approved",
    "reshare_denied",
    "reshare_executed",
]


@router.get("/entries")
async def entries(
    auditor: Auditor,
    runtime: Runtime,
    agency: AgencyId | None = None,
    border_pair: BorderPair | None = None,
    kind: Annotated[str | None, Query(pattern="^(seizure|risk|feedback)$")] = None,
    type: EntryType | None = None,
    alert_id: AlertId | None = None,
    since: UtcTimestamp | None = None,
    until: UtcTimestamp | None = None,
    cursor: Annotated[int, Query(ge=-1, le=_MAX_INDEX)] = -1,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """Entries with index > ``cursor`` matching every given filter, in ledger order."""
    rows = await runtime.ledger.entries(
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
    return {
        "entries": [entry_json(index, leaf) for index, leaf in rows],
        "next_cursor": rows[-1][0] if len(rows) == limit else None,
    }


# --- checkpoints, proofs, export ------------------------------------------------------------


def _checkpoint_json(checkpoint: StoredCheckpoint) -> dict[str, Any]:
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash.hex(),
        "note": checkpoint.note,
    }


async def _latest(runtime: NodeRuntime) -> StoredCheckpoint:
    checkpoint = await runtime.ledger.latest_checkpoint()
    if checkpoint is None:
        raise NotFound("no checkpoint has been signed yet")
    return checkpoint


def _beyond(what: str, value: int, latest: StoredCheckpoint) -> JSONResponse:
    return problem(
        422,
        f"{what} {value} is beyond the latest checkpoint's tree size {latest.tree_size}",
        type_="validation",
    )


async def _ledger_key(runtime: NodeRuntime, latest: StoredCheckpoint) -> str:
    """The verifier key (from the directory) that signed ``latest``.

    Which key is *trusted* is the verifier's business (``--key``, ``--trust``); this only finds
    the one that matches, so that a first-time verifier has something to pin.
    """
    origin = runtime.settings.ledger_origin
    for attempt in range(2):
        if attempt:
            runtime.directory.invalidate()  # the writer may have registered it since
        keys = await runtime.directory.verify_keys("ledger", origin, utc_now())
        for key in keys.values():
            verifier = NoteVerifier(origin, key.public)
            try:
                open_checkpoint(latest.note, [verifier], origin)
            except NoteError:
                continue
            return verifier.verifier_key_string()
    raise NotFound("the directory holds no ledger key that signed the latest checkpoint")


@router.get("/checkpoint")
async def checkpoint(auditor: Auditor, runtime: Runtime) -> dict[str, Any]:
    """The latest signed checkpoint."""
    return _checkpoint_json(await _latest(runtime))


@router.get("/proofs/inclusion", response_model=None)
async def inclusion_proof(
    auditor: Auditor,
    runtime: Runtime,
    index: Annotated[int, Query(ge=0)],
    tree_size: Annotated[int, Query(ge=1)],
) -> dict[str, Any] | JSONResponse:
    """The RFC 9162 audit path of entry ``index`` in the tree of ``tree_size`` entries."""
    latest = await _latest(runtime)
    if tree_size > latest.tree_size:
        return _beyond("tree_size", tree_size, latest)
    if index >= tree_size:
        return problem(422, f"index {index} is not below tree_size {tree_size}", type_="validation")
    path = await runtime.ledger.inclusion_proof(index, tree_size)
    return {"index": index, "tree_size": tree_size, "path": [p.hex() for p in path]}


@router.get("/proofs/consistency", response_model=None)
async def consistency_proof(
    auditor: Auditor,
    runtime: Runtime,
    first: Annotated[int, Query(ge=0)],
    second: Annotated[int, Query(ge=0)],
) -> dict[str, Any] | JSONResponse:
    """The RFC 9162 consistency proof from the tree of ``first`` entries to ``second``."""
    latest = await _latest(runtime)
    if second > latest.tree_size:
        return _beyond("second", second, latest)
    if first > second:
        return problem(422, f"first {first} is larger than second {second}", type_="validation")
    path = await runtime.ledger.consistency_proof(first, second)
    return {"first": first, "second": second, "path": [p.hex() for p in path]}


@router.get("/export")
async def export(auditor: Auditor, runtime: Runtime) -> dict[str, Any]:
    """Everything ``blo-exchange ledger verify`` needs, up to the latest checkpoint."""
    latest = await _latest(runtime)
    key = await _ledger_key(runtime, latest)
    leaves = await runtime.ledger.leaves(latest.tree_size)
    return build_bundle(
        origin=runtime.settings.ledger_origin,
        ledger_public_key=key,
        checkpoint=_checkpoint_json(latest),
        checkpoints=[_checkpoint_json(c) for c in await runtime.ledger.checkpoints()],
        leaves=leaves,
    )


@router.get(
    "/sharing",
    response_model=None,
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
async def sharing(
    auditor: Auditor,
    runtime: Runtime,
    since: UtcTimestamp | None = None,
    until: UtcTimestamp | None = None,
    format: Literal["json", "csv"] = "json",
) -> dict[str, Any] | Response:
    """Who shared with whom: ``alert_shared`` entries counted by agency pair, border pair, kind."""
    counts = await runtime.ledger.sharing(since=since, until=until)
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
