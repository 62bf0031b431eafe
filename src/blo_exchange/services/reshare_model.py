"""Re-share requests: their record types, their state, and the ports the re-share service needs.

A re-share sends an alert to an agency that was not among its recipients. Each step is a signed
record on ``blo.v1.receipts.<PAIR>`` (so each lands in the ledger) and a row of the
``reshare_requests`` table on every node that takes part: the requesting node and the origin node.

Not here: who may ask or decide, and how the re-share is carried out (``services.reshare``).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final, Protocol

from blo_exchange.domain.ids import format_time
from blo_exchange.domain.ledger import LedgerEntryType

__all__ = [
    "MAX_REASON_CHARS",
    "RESHARE_RECORD_TYPES",
    "AgencyLookup",
    "ReshareRecord",
    "ReshareRequest",
    "ReshareStatus",
    "ReshareStore",
]

MAX_REASON_CHARS: Final = 500


class ReshareRecord(StrEnum):
    """The ``type`` of each signed record of a re-share, and of its ledger entry."""

    REQUESTED = LedgerEntryType.RESHARE_REQUESTED.value
    APPROVED = LedgerEntryType.RESHARE_APPROVED.value
    DENIED = LedgerEntryType.RESHARE_DENIED.value
    EXECUTED = LedgerEntryType.RESHARE_EXECUTED.value


RESHARE_RECORD_TYPES: Final = frozenset(t.value for t in ReshareRecord)


class ReshareStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    DENIED = "denied"
    EXECUTED = "executed"


@dataclass(frozen=True)
class ReshareRequest:
    """One node's view of one re-share request (the requesting and the origin node each keep
    theirs, keyed by their own ``node_id``)."""

    node_id: str
    request_id: str
    alert_id: str
    border_pair: str
    kind: str
    tlp: str
    origin_agency: str
    origin_node: str
    requesting_agency: str
    requesting_node: str
    requested_by: str
    target_agency: str
    reason: str
    restricted: bool
    agreement_ids: tuple[str, ...]
    status: ReshareStatus
    requested_at: datetime
    decided_by: str | None = None
    decided_at: datetime | None = None
    decision_reason: str | None = None
    new_alert_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "alert_id": self.alert_id,
            "border_pair": self.border_pair,
            "kind": self.kind,
            "tlp": self.tlp,
            "origin_agency": self.origin_agency,
            "requesting_agency": self.requesting_agency,
            "requesting_node": self.requesting_node,
            "requested_by": self.requested_by,
            "target_agency": self.target_agency,
            "reason": self.reason,
            "restricted": self.restricted,
            "agreement_ids": list(self.agreement_ids),
            "status": self.status.value,
            "requested_at": format_time(self.requested_at),
            "decided_by": self.decided_by,
            "decided_at": None if self.decided_at is None else format_time(self.decided_at),
            "decision_reason": self.decision_reason,
            "new_alert_id": self.new_alert_id,
        }


class ReshareStore(Protocol):
    async def add(self, request: ReshareRequest) -> bool:
        """Insert; False when ``(node_id, request_id)`` is already there."""
        ...

    async def get(self, node_id: str, request_id: str) -> ReshareRequest | None: ...

    async def for_alert(self, node_id: str, alert_id: str) -> list[ReshareRequest]:
        """Oldest first."""
        ...

    async def transition(
        self,
        node_id: str,
        request_id: str,
        *,
        allowed_from: Collection[ReshareStatus],
        to: ReshareStatus,
        at: datetime,
        decided_by: str | None = None,
        decision_reason: str | None = None,
        new_alert_id: str | None = None,
        clear_decision: bool = False,
    ) -> ReshareRequest | None:
        """Move the request to ``to`` if its status is one of ``allowed_from``; the new state,
        or None when it was not. Fields given (not None) are set, the others kept, unless
        ``clear_decision``, which empties ``decided_by``, ``decision_reason`` and
        ``new_alert_id`` (an undone claim)."""
        ...


class AgencyLookup(Protocol):
    async def agency_exists(self, agency_id: str) -> bool: ...
