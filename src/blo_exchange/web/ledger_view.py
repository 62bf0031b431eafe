"""What the pages make of ledger entries: each recipient's state of an alert and where lookouts
hit it, and the sharing matrix the auditor's chart draws. Pure functions over the entries' parsed
fields.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from blo_exchange.ledger.ports import SharingCount
from blo_exchange.services.hits import ReportedHit, reported_hit

__all__ = ["Matrix", "RecipientState", "SentAlert", "sent_alert", "sharing_matrix"]

# How far an agency got with an alert; a later receipt never moves it back.
_PROGRESS = {"alert_delivered": 1, "alert_acknowledged": 2, "feedback": 3, "alert_rejected": 4}
_STATE = {0: "pending", 1: "delivered", 2: "acknowledged", 3: "feedback", 4: "rejected"}


@dataclass(frozen=True)
class RecipientState:
    agency: str
    state: str  # origin | pending | delivered | acknowledged | feedback | rejected
    outcome: str | None = None
    at: str | None = None


@dataclass(frozen=True)
class SentAlert:
    alert_id: str
    occurred_at: str
    border_pair: str
    kind: str
    origin_agency: str
    recipients: tuple[RecipientState, ...]
    hits: tuple[ReportedHit, ...] = ()
    """Where lookouts matched it (risk alerts), oldest first."""


def sent_alert(shared: Mapping[str, Any], entries: Iterable[Mapping[str, Any]]) -> SentAlert:
    """Each recipient agency's state of the alert that ``shared`` (its alert_shared entry) names."""
    origin = str(shared.get("actor_agency") or "")
    best: dict[str, tuple[int, str | None, str | None]] = {}
    hits = []
    for entry in entries:
        hit = reported_hit(entry) if entry.get("alert_id") == shared.get("alert_id") else None
        if hit is not None:
            hits.append(hit)
        rank = _PROGRESS.get(str(entry.get("type")))
        agency = str(entry.get("actor_agency") or "")
        if rank is None or entry.get("alert_id") != shared.get("alert_id"):
            continue
        outcome = (entry.get("detail") or {}).get("outcome")
        if rank > best.get(agency, (0, None, None))[0]:
            best[agency] = (rank, outcome, entry.get("occurred_at"))
    states = []
    for agency in shared.get("recipients") or ():
        rank, outcome, at = best.get(agency, (0, None, None))
        state = "origin" if agency == origin and rank == 0 else _STATE[rank]
        states.append(RecipientState(agency, state, outcome, at))
    return SentAlert(
        alert_id=str(shared.get("alert_id")),
        occurred_at=str(shared.get("occurred_at")),
        border_pair=str(shared.get("border_pair")),
        kind=str(shared.get("kind")),
        origin_agency=origin,
        recipients=tuple(states),
        hits=tuple(hits),
    )


@dataclass(frozen=True)
class Cell:
    row: int
    column: int
    count: int
    level: int  # 0 (none) to 4 (the busiest pair): the shade class of the cell


@dataclass(frozen=True)
class Matrix:
    origins: tuple[str, ...]
    recipients: tuple[str, ...]
    cells: tuple[Cell, ...]

    @property
    def empty(self) -> bool:
        return not any(cell.count for cell in self.cells)

    def count(self, origin: str, recipient: str) -> int:
        for cell in self.cells:
            if self.origins[cell.row] == origin and self.recipients[cell.column] == recipient:
                return cell.count
        return 0


def sharing_matrix(rows: Sequence[SharingCount]) -> Matrix:
    """Agency-by-agency counts of alerts shared, summed over border pairs and kinds."""
    totals: dict[tuple[str, str], int] = {}
    for row in rows:
        key = (row.origin_agency, row.recipient_agency)
        totals[key] = totals.get(key, 0) + row.count
    origins = tuple(sorted({o for o, _ in totals}))
    recipients = tuple(sorted({r for _, r in totals}))
    peak = max(totals.values(), default=0)
    cells = []
    for i, origin in enumerate(origins):
        for j, recipient in enumerate(recipients):
            count = totals.get((origin, recipient), 0)
            level = 0 if count == 0 else 1 + (3 * count) // max(peak, 1) if count < peak else 4
            cells.append(Cell(i, j, count, min(level, 4)))
    return Matrix(origins, recipients, tuple(cells))
