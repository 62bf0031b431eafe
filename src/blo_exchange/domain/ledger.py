"""The kinds of ledger entry: one list, which the writer, the API's filter and the pages share."""

from __future__ import annotations

from enum import StrEnum
from typing import Final

__all__ = [
    "RECEIPT_ENTRY_TYPES",
    "RESHARE_ENTRY_TYPES",
    "RETENTION_ENTRY_TYPES",
    "LedgerEntryType",
]


class LedgerEntryType(StrEnum):
    ALERT_SHARED = "alert_shared"
    """An origin node sealed and published an alert (from its signed envelope)."""
    ALERT_DELIVERED = "alert_delivered"
    ALERT_ACKNOWLEDGED = "alert_acknowledged"
    FEEDBACK = "feedback"
    ALERT_REJECTED = "alert_rejected"
    LEDGER_QUERIED = "ledger_queried"
    KEY_REGISTERED = "key_registered"
    KEY_REVOKED = "key_revoked"
    AGREEMENT_CHANGED = "agreement_changed"
    RESHARE_REQUESTED = "reshare_requested"
    RESHARE_APPROVED = "reshare_approved"
    RESHARE_DENIED = "reshare_denied"
    RESHARE_EXECUTED = "reshare_executed"
    HIT = "hit"
    """A lookout at a crossing matched a risk alert (the checking node's signed receipt)."""
    NOMINAL_ERASED = "nominal_erased"
    """A recipient node destroyed the keys that open an alert's nominal part (its receipt)."""
    NOMINAL_RETENTION_EXTENDED = "nominal_retention_extended"
    """The originating node kept an alert's nominal block longer, with a reason (its record)."""


RESHARE_ENTRY_TYPES: Final = frozenset(
    {
        LedgerEntryType.RESHARE_REQUESTED,
        LedgerEntryType.RESHARE_APPROVED,
        LedgerEntryType.RESHARE_DENIED,
        LedgerEntryType.RESHARE_EXECUTED,
    }
)
"""Steps of a re-share: records signed by a node like receipts."""

RETENTION_ENTRY_TYPES: Final = frozenset(
    {LedgerEntryType.NOMINAL_ERASED, LedgerEntryType.NOMINAL_RETENTION_EXTENDED}
)
"""The personal-data lifecycle's receipts and records (docs/retention.md)."""

RECEIPT_ENTRY_TYPES: Final = (
    frozenset(
        {
            LedgerEntryType.ALERT_DELIVERED,
            LedgerEntryType.ALERT_ACKNOWLEDGED,
            LedgerEntryType.FEEDBACK,
            LedgerEntryType.ALERT_REJECTED,
            LedgerEntryType.HIT,
        }
    )
    | RESHARE_ENTRY_TYPES
    | RETENTION_ENTRY_TYPES
)
"""Entries made from a node's signed receipt or record on ``blo.v1.receipts.<pair>``."""
