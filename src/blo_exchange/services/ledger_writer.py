"""The ledger writer: one ledger entry per alert and receipt on the bus, appended in batches.

It verifies what it records (the origin node's signature on an envelope, the receiving node's on a
receipt) but opens nothing: it holds no agency's key. Whatever fails verification is still
recorded, as ``alert_rejected`` with the reason, so nothing on the bus goes unaccounted for.
Appends are idempotent on the event id, so a redelivered batch adds nothing; the caller acks only
after :meth:`LedgerWriter.handle` returned.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.domain.ids import parse_time
from blo_exchange.domain.subjects import (
    ALERTS_PREFIX,
    RECEIPTS_PREFIX,
    parse_alert_subject,
    parse_receipt_subject,
)
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.services.ledger_entries import build_entry
from blo_exchange.services.ports import Directory, LedgerStore, NewLedgerEntry

__all__ = ["InboundMessage", "LedgerWriter"]

RECEIPT_TYPES = frozenset({"alert_delivered", "alert_acknowledged", "feedback", "alert_rejected"})


@dataclass(frozen=True)
class InboundMessage:
    subject: str
    data: bytes
    stream_seq: int


class LedgerWriter:
    def __init__(
        self, *, directory: Directory, store: LedgerStore, clock: Callable[[], datetime]
    ) -> None:
        self._directory = directory
        self._store = store
        self._clock = clock
        self.appended = 0

    async def handle(self, messages: Sequence[InboundMessage]) -> list[int]:
        entries = [await self._entry_for(m) for m in messages]
        indexes = await self._store.append(entries)
        self.appended += len(indexes)
        return indexes

    async def _entry_for(self, message: InboundMessage) -> NewLedgerEntry:
        if message.subject.startswith(ALERTS_PREFIX + "."):
            return await self._shared(message)
        if message.subject.startswith(RECEIPTS_PREFIX + "."):
            return await self._receipt(message)
        return self._rejected(message, "unknown_subject", None)

    async def _shared(self, message: InboundMessage) -> NewLedgerEntry:
        # (1) subject, (2) structure, (3) signature by a known unrevoked key of the origin node,
        # (4) subject matches header. Not checked: anything about the ciphertext's content.
        try:
            pair, kind = parse_alert_subject(message.subject)
            envelope = UnverifiedEnvelope.parse(message.data)
            keys = await self._directory.verify_keys("node", envelope.origin_node, self._clock())
            verified = envelope.verify_signature_only(
                keys, subject_border_pair=pair, subject_kind=kind
            )
        except (InvalidEnvelope, ValueError) as exc:
            return self._rejected(message, getattr(exc, "reason", "malformed"), None)
        header = verified.header
        return build_entry(
            event_id=f"alert_shared:{verified.alert_id}",
            type="alert_shared",
            occurred_at=parse_time(str(header["created_at"])),
            alert_id=verified.alert_id,
            actor_node=str(header["origin_node"]),
            actor_agency=str(header["origin_agency"]),
            recipients=list(verified.recipients),
            border_pair=pair,
            kind=kind,
            agreement_ids=[str(a) for a in header["agreement_ids"]],
            envelope_sha256=_sha256(message.data),
            detail={"tlp": header["tlp"], "crossing_point": header["crossing_point"]},
        )

    async def _receipt(self, message: InboundMessage) -> NewLedgerEntry:
        try:
            pair = parse_receipt_subject(message.subject)
            receipt = UnverifiedReceipt.parse(message.data)
            keys = await self._directory.verify_keys("node", receipt.node, self._clock())
            body = receipt.verify(keys).body
            if body.get("border_pair") != pair or body.get("type") not in RECEIPT_TYPES:
                raise InvalidEnvelope("receipt does not match its subject")
            occurred_at = parse_time(str(body["occurred_at"]))
        except (InvalidEnvelope, ValueError, KeyError) as exc:
            return self._rejected(message, getattr(exc, "reason", "malformed_receipt"), None)
        detail = dict(body.get("detail") or {})
        detail["receipt_id"] = body["receipt_id"]
        return build_entry(
            event_id=f"receipt:{body['receipt_id']}",
            type=str(body["type"]),
            occurred_at=occurred_at,
            alert_id=body.get("alert_id"),
            actor_node=str(body["node"]),
            actor_agency=str(body["agency"]),
            border_pair=pair,
            kind=body.get("kind"),
            agreement_ids=[str(a) for a in body.get("agreement_ids") or []],
            envelope_sha256=body.get("envelope_sha256"),
            detail=detail,
        )

    def _rejected(
        self, message: InboundMessage, reason: str, alert_id: str | None
    ) -> NewLedgerEntry:
        digest = _sha256(message.data)
        return build_entry(
            event_id=f"rejected:{digest}:{message.subject[:200]}",
            type="alert_rejected",
            occurred_at=self._clock(),
            alert_id=alert_id,
            actor_node=None,
            actor_agency=None,
            envelope_sha256=digest,
            detail={"reason": reason, "subject": message.subject[:200], "by": "ledger-writer"},
        )


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
