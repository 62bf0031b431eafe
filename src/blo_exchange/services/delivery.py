"""A partner node receiving an alert from the bus: verify, check, open, store, send a receipt.

The checks follow docs/contracts/envelope.md in order; every failure has the same outcome — the
message is rejected, counted, recorded in the node's rejection table and, through a signed
``alert_rejected`` receipt, in the ledger — and never reaches a feed. Acking is the caller's job,
after :meth:`DeliveryService.handle` returned (so after the commit).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from blo_exchange.crypto.envelope import OpenedEnvelope, UnverifiedEnvelope, envelope_sha256
from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import parse_border_pair, parse_time
from blo_exchange.domain.subjects import parse_alert_subject
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.services.metrics import Histogram
from blo_exchange.services.ports import Directory, Inbox, InboxItem, Rejection
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType, deterministic_receipt_id
from blo_exchange.services.signed import SignedMessages

__all__ = ["DeliveryOutcome", "DeliveryService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # delivered | duplicate | not_addressed | rejected
    alert_id: str | None = None
    reason: str | None = None


class DeliveryService:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        inbox: Inbox,
        receipts: ReceiptPublisher,
        clock: Callable[[], datetime],
        on_stored: Callable[[str, str, OpenedEnvelope], Awaitable[None]] | None = None,
    ) -> None:
        self._node = node
        # Issue 17: told (alert id, origin node, opened) once an alert with files is stored, so
        # the files this agency may open are fetched after it; before the ack, on redelivery too.
        self._on_stored = on_stored
        self._kem_keys = kem_keys
        self._signed = SignedMessages(directory, clock=clock)
        self._inbox = inbox
        self._receipts = receipts
        self._clock = clock
        self.counts: Counter[str] = Counter()
        # From the origin's created_at to stored here: the alert's trip, as partners see it.
        self.delivery_seconds = Histogram()

    async def handle(self, subject: str, data: bytes, stream_seq: int) -> DeliveryOutcome:
        outcome = await self._handle(subject, data, stream_seq)
        self.counts[outcome.status] += 1
        return outcome

    async def _handle(self, subject: str, data: bytes, stream_seq: int) -> DeliveryOutcome:
        agency = self._node.agency_id
        digest = envelope_sha256(data)
        # (0) The subject must be one of ours; a forged subject is rejected like a forged body.
        try:
            pair, kind = parse_alert_subject(subject)
        except ValueError:
            return await self._reject(subject, data, stream_seq, "bad_subject", None, digest)
        # (0b) These exact bytes are an alert this node sealed itself and has already stored
        # (the ingest path did, before this consumer got it): nothing to check, nothing to store,
        # and the origin sends no delivered receipt. Any other bytes take every step below.
        if self._inbox.sealed_here(digest):
            return DeliveryOutcome(status="duplicate")
        # (1) Structure. Nothing below trusts an unverified field except to look up keys.
        try:
            unverified = UnverifiedEnvelope.parse(data)
        except InvalidEnvelope:
            return await self._reject(subject, data, stream_seq, "malformed", None, digest)
        alert_id = unverified.alert_id
        if agency not in unverified.recipient_agencies:
            # Not addressed to this agency (another agency's node on the same border pair):
            # nothing to deliver and nothing wrong.
            return DeliveryOutcome(status="not_addressed", alert_id=alert_id)
        # (2)-(6) Known unrevoked key of origin_node, signature, part hashes, subject, recipient.
        try:
            verified = await self._signed.envelope(
                unverified, border_pair=pair, kind=kind, recipient_agency=agency
            )
        except InvalidEnvelope as exc:
            reason = getattr(exc, "reason", "invalid")
            return await self._reject(subject, data, stream_seq, reason, alert_id, digest)
        # (7) Open: proves the envelope really carries readable keys for us. The inbox keeps the
        # sealed bytes only; the feed opens them again when an analyst reads.
        try:
            opened = verified.open(agency, self._kem_keys)
        except InvalidEnvelope:
            return await self._reject(subject, data, stream_seq, "undecryptable", alert_id, digest)
        # (8) Expired: a risk alert past its valid_until is not news any more, and a replayed old
        # lookout must not reach a feed as if it were. Recorded like any rejection.
        if _expired(opened.parts.get("case"), self._clock()):
            return await self._reject(subject, data, stream_seq, "expired", alert_id, digest)
        header = verified.header
        stored = await self._inbox.add(
            InboxItem(
                node_id=self._node.id,
                alert_id=alert_id,
                agency_id=agency,
                origin_agency=str(header["origin_agency"]),
                origin_node=str(header["origin_node"]),
                border_pair=pair,
                kind=kind,
                tlp=str(header["tlp"]),
                created_at=parse_time(str(header["created_at"])),
                stream_seq=stream_seq,
                envelope=data,
                envelope_sha256=digest,
            )
        )
        if self._on_stored is not None and opened.files:
            await self._on_stored(alert_id, str(header["origin_node"]), opened)
        if header["origin_node"] != self._node.id:
            # Sent again on redelivery too: the deterministic id makes JetStream drop the copy.
            await self._receipts.send(
                receipt_id=deterministic_receipt_id(alert_id, self._node.id, "delivered"),
                type=ReceiptType.DELIVERED,
                border_pair=pair,
                alert_id=alert_id,
                kind=kind,
                agreement_ids=[str(a) for a in header["agreement_ids"]],
                envelope_sha256=digest,
            )
        if stored:
            created = parse_time(str(header["created_at"]))
            self.delivery_seconds.observe(max(0.0, (self._clock() - created).total_seconds()))
        return DeliveryOutcome(status="delivered" if stored else "duplicate", alert_id=alert_id)

    async def set_aside(self, subject: str, data: bytes, stream_seq: int) -> DeliveryOutcome:
        """Record a message that kept failing in :meth:`handle` (a poison message), like a
        rejection: in the node's rejection table and, by receipt, in the ledger."""
        try:
            alert_id: str | None = UnverifiedEnvelope.parse(data).alert_id
        except InvalidEnvelope:
            alert_id = None
        outcome = await self._reject(
            subject, data, stream_seq, "handler_failed", alert_id, envelope_sha256(data)
        )
        self.counts["set_aside"] += 1
        return outcome

    async def _reject(
        self,
        subject: str,
        data: bytes,
        stream_seq: int,
        reason: str,
        alert_id: str | None,
        digest: str,
    ) -> DeliveryOutcome:
        log.warning(
            "rejected message",
            extra={"subject": subject, "seq": stream_seq, "reason": reason, "alert_id": alert_id},
        )
        await self._inbox.reject(
            Rejection(
                node_id=self._node.id,
                subject=subject,
                stream_seq=stream_seq,
                reason=reason,
                alert_id=alert_id,
                envelope_sha256=digest,
            )
        )
        pair = _pair_of(subject)
        if pair is not None:
            await self._receipts.send(
                receipt_id=deterministic_receipt_id(digest, self._node.id, "rejected"),
                type=ReceiptType.REJECTED,
                border_pair=pair,
                alert_id=alert_id,
                kind=None,
                agreement_ids=[],
                envelope_sha256=digest,
                detail={"reason": reason, "subject": subject[:200], "stream_seq": stream_seq},
            )
        return DeliveryOutcome(status="rejected", alert_id=alert_id, reason=reason)


def _expired(case: bytes | None, now: datetime) -> bool:
    if case is None:
        return False
    try:
        valid_until = json.loads(case).get("valid_until")
        return valid_until is not None and parse_time(str(valid_until)) <= now
    except (ValueError, AttributeError):
        return False  # the case is the origin's signed content; its shape is not ours to judge


def _pair_of(subject: str) -> str | None:
    """The border pair a rejection receipt goes to: the subject's, when it names a valid one."""
    try:
        return parse_alert_subject(subject)[0]
    except ValueError:
        parts = subject.split(".")
        return None if len(parts) < 4 else _valid_pair(parts[3])


def _valid_pair(text: str) -> str | None:
    try:
        return parse_border_pair(text)
    except ValueError:
        return None
