"""Review tasks before a nominal block expires, and extensions: decided by the originator,
applied by every recipient (docs/retention.md).

At the **originating node**, an analyst of the origin agency sees its alerts whose nominal block
expires within some days (:meth:`RetentionReviews.tasks`) and either lets one expire (a local
decision; nothing to tell) or keeps it, with a reason, to a later day no later than the
governing agreement's maximum (:meth:`RetentionReviews.keep`). Keeping publishes a signed
``nominal_retention_extended`` record on the alert's pair's receipt subject: the ledger records
it, and every recipient node reads it (:meth:`RetentionReviews.handle_record`).

At a **recipient node**, an extension is applied only if, in this order:

1. it verifies as a record of a known, unrevoked node key, whose agency is that node's
   (``services.signed``), on its own pair's subject;
2. this node holds the alert's nominal block under retention, not yet erased nor expired;
3. the record's agency is the alert's origin agency (``not_originator``), it gives a reason, a
   later end, and one within the agreement's maximum as this node computed it on delivery
   (``domain.retention.check_extension``).

Then the part's data key is re-wrapped under the epoch key of the new day. A refused record is
logged and counted, never applied; the ledger still records it, under its signer's agency.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import replace
from datetime import datetime, timedelta

from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.crypto.retention import rewrap_nominal
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.ids import format_time, parse_time
from blo_exchange.domain.retention import check_extension, day_of, expiry_day
from blo_exchange.domain.subjects import parse_receipt_subject
from blo_exchange.errors import Forbidden, InvalidEnvelope, NotFound, PolicyError
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType
from blo_exchange.services.retention import (
    EpochKeyStore,
    RetainedNominal,
    RetentionStore,
    send_about,
)
from blo_exchange.services.retention_sweep import Clock
from blo_exchange.services.signed import SignedMessages

__all__ = ["ExtensionRefused", "RetentionReviews"]

log = logging.getLogger(__name__)

_REASONS = {
    "not_originator": "only the originating agency may keep its alert's nominal block",
    "reason_required": "keeping the nominal block needs a reason (at most 500 characters)",
    "not_later": "the new end must be later than the current one",
    "beyond_maximum": "the new end is beyond what the agreement allows",
    "ended": "the nominal block's retention has already ended",
}


class ExtensionRefused(PolicyError):  # noqa: N818 - like NoAgreement
    """A keep the rules refuse (422); ``reason`` is the short code (``beyond_maximum``, ...)."""

    def __init__(self, reason: str) -> None:
        super().__init__(_REASONS[reason])
        self.reason = reason


class RetentionReviews:
    def __init__(
        self,
        *,
        node: Node,
        store: RetentionStore,
        keys: EpochKeyStore,
        receipts: ReceiptPublisher,
        signed: SignedMessages,
        clock: Clock,
    ) -> None:
        self._node = node
        self._store = store
        self._keys = keys
        self._receipts = receipts
        self._signed = signed
        self._clock = clock
        self.counts: Counter[str] = Counter()

    def _require_analyst(self, principal: Principal) -> None:
        if principal.role is not Role.ANALYST or principal.agency_id != self._node.agency_id:
            raise Forbidden("only an analyst of this node's agency reviews its alerts")

    async def tasks(self, principal: Principal, *, within_days: int) -> list[RetainedNominal]:
        """The origin agency's alerts whose nominal block expires within ``within_days``."""
        self._require_analyst(principal)
        now = self._clock()
        rows = await self._store.expiring(self._node.id, now + timedelta(days=within_days))
        return [r for r in rows if r.expires_at > now]

    async def _own(self, principal: Principal, alert_id: str) -> RetainedNominal:
        self._require_analyst(principal)
        row = await self._store.get(self._node.id, alert_id)
        if row is None or row.role != "origin" or row.origin_agency != principal.agency_id:
            raise NotFound("no nominal block of this agency's under review here")
        if row.expires_at <= self._clock():
            raise ExtensionRefused("ended")
        return row

    async def let_expire(self, principal: Principal, alert_id: str) -> RetainedNominal:
        row = await self._own(principal, alert_id)
        updated = replace(row, decision="expire", decided_by=principal.id, reason=None)
        await self._store.update(updated)
        return updated

    async def keep(
        self, principal: Principal, alert_id: str, *, until: datetime, reason: str
    ) -> RetainedNominal:
        """Extend to 00:00 UTC of ``until``'s day; ``PolicyError`` saying why it may not."""
        row = await self._own(principal, alert_id)
        end = expiry_day(until, 0)
        refused = check_extension(
            requester_agency=str(principal.agency_id),
            origin_agency=row.origin_agency,
            current=row.expires_at,
            until=end,
            max_until=row.max_until,
            reason=reason,
        )
        if refused is not None:
            raise ExtensionRefused(refused)
        await send_about(
            self._receipts,
            row,
            type=ReceiptType.NOMINAL_RETENTION_EXTENDED,
            key=("nominal_retention_extended", format_time(end)),
            detail={
                "previous": format_time(row.expires_at),
                "until": format_time(end),
                "reason": reason,
            },
        )
        updated = replace(
            row, expires_at=end, decision="kept", decided_by=principal.id, reason=reason
        )
        await self._store.update(updated)
        return updated

    async def handle_record(self, subject: str, data: bytes) -> str | None:
        """An extension record from the receipt subjects: what became of it (for counting), or
        None for a record of another type (not ours to look at)."""
        try:
            unverified = UnverifiedReceipt.parse(data)
        except InvalidEnvelope:
            return None
        if unverified.body.get("type") != ReceiptType.NOMINAL_RETENTION_EXTENDED.value:
            return None
        outcome = await self._apply(subject, unverified)
        self.counts[outcome] += 1
        if outcome != "extended" and outcome != "not_here":
            log.warning("extension refused", extra={"reason": outcome, "node": unverified.node})
        return outcome

    async def _apply(self, subject: str, unverified: UnverifiedReceipt) -> str:
        # (1) Signed by its node, whose agency it names, on its own pair's subject.
        try:
            body = await self._signed.record(unverified)
            if parse_receipt_subject(subject) != body.get("border_pair"):
                return "subject_mismatch"
            detail = body["detail"]
            until = expiry_day(parse_time(str(detail["until"])), 0)
            reason = str(detail["reason"])
            alert_id = str(body["alert_id"])
        except (InvalidEnvelope, ValueError, KeyError, TypeError) as exc:
            return f"invalid:{getattr(exc, 'reason', 'malformed')}"
        # (2) Held here, under retention, not erased nor expired.
        row = await self._store.get(self._node.id, alert_id)
        if row is None or row.role != "recipient":
            return "not_here"
        if row.erased_at is not None or row.sealed is None or row.expires_at <= self._clock():
            return "too_late"
        # (3) The originator, a reason, later, within the maximum.
        refused = check_extension(
            requester_agency=str(body["agency"]),
            origin_agency=row.origin_agency,
            current=row.expires_at,
            until=until,
            max_until=row.max_until,
            reason=reason,
        )
        if refused is not None:
            return refused
        day = day_of(until)
        new_key = self._keys.get(day, create=True)
        assert new_key is not None
        try:
            sealed = rewrap_nominal(
                row.sealed,
                self._keys.get(row.sealed.day, create=False),
                new_key,
                alert_id=alert_id,
                day=day,
            )
        except InvalidEnvelope:
            return "too_late"  # its epoch key was destroyed meanwhile
        applied = await self._store.update(
            replace(
                row,
                expires_at=until,
                sealed=sealed,
                decision="kept",
                decided_by=str(body["node"]),
                reason=reason,
            ),
            if_sealed_on=row.sealed.day,
        )
        return "extended" if applied else "too_late"  # the sweeper erased it meanwhile
