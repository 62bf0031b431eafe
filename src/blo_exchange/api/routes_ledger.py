"""``/v1/ledger``: the auditors' view of who shared what with whom [contract, DESIGN §5]."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query

from blo_exchange.api.deps import Auditor, Runtime
from blo_exchange.domain.ids import AlertId, BorderPair
from blo_exchange.ledger.store import EntryFilter
from blo_exchange.services.ledger_entries import entry_json

__all__ = ["router"]

router = APIRouter(prefix="/v1/ledger", tags=["ledger"])

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
]


@router.get("/entries")
async def entries(
    auditor: Auditor,
    runtime: Runtime,
    agency: Annotated[str | None, Query(max_length=64)] = None,
    border_pair: BorderPair | None = None,
    kind: Annotated[str | None, Query(pattern="^(seizure|risk|feedback)$")] = None,
    type: EntryType | None = None,
    alert_id: AlertId | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: Annotated[int, Query(ge=-1)] = -1,
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
