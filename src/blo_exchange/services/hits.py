"""Signed ``hit`` receipts: telling a risk alert's originator that a lookout matched it, and where.

A hit is signed by the checking node like every receipt (``ReceiptPublisher.prepare``) and kept
in the node's receipt outbox (``services.receipt_queue``, its own database) *before* it is
published, so a hit found while NATS or the hub is unreachable is not lost: it is published at
once when the bus answers within ``publish_timeout``, and otherwise by the node's
``ReceiptRelay``, under the same ``Nats-Msg-Id``. The ledger writer appends it as a ``hit``
entry, which the originator's sent-alerts view reads.

What the receipt says (docs/contracts/receipts.md): the alert, the crossing point, the time, the
officer's principal id and which kind of field matched (``plate``, ``document``...). Never the
value the officer typed: the originator knows its own alert, and the traveller's spelling is
nobody else's business; every party's auditors read ledger entries.

Also here: :func:`reported_hit`, a ledger entry's hit as the originator's views show it (the
API's ``/v1/alerts/{id}/hits`` and the officer's sent list, both read from the ledger).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blo_exchange.domain.ids import format_time
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.errors import BusError
from blo_exchange.services.ports import InboxItem
from blo_exchange.services.receipt_queue import ReceiptQueue
from blo_exchange.services.receipts import (
    PreparedReceipt,
    ReceiptPublisher,
    ReceiptType,
    deterministic_receipt_id,
)

__all__ = ["HitReceipts", "ReportedHit", "SentHit", "reported_hit"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SentHit:
    receipt_id: str
    published: bool
    """False: kept in the outbox, for the relay to publish when the bus answers again."""
    body: dict[str, Any]


class HitReceipts:
    def __init__(
        self,
        *,
        receipts: ReceiptPublisher,
        outbox: ReceiptQueue,
        node_id: str,
        publish_timeout: float = 2.0,
    ) -> None:
        self._receipts = receipts
        self._outbox = outbox
        self._node_id = node_id
        self._timeout = publish_timeout
        self.queued = 0

    async def record(
        self,
        *,
        row: InboxItem,
        header: Mapping[str, Any],
        crossing_point: str,
        principal_id: str,
        matched: FieldKind,
        checked_at: datetime,
    ) -> SentHit:
        """Sign the hit, keep it, then try to publish it (at most ``publish_timeout``)."""
        prepared = self._receipts.prepare(
            # Same check, same id: a retried request does not make a second hit.
            receipt_id=deterministic_receipt_id(
                row.alert_id, self._node_id, principal_id, "hit", format_time(checked_at)
            ),
            type=ReceiptType.HIT,
            border_pair=row.border_pair,
            alert_id=row.alert_id,
            kind=row.kind,
            agreement_ids=[str(a) for a in header.get("agreement_ids") or ()],
            envelope_sha256=row.envelope_sha256,
            detail={
                "crossing_point": crossing_point,
                "principal": principal_id,
                "matched": matched.value,
            },
        )
        await self._outbox.put(prepared.subject, prepared.raw, prepared.msg_id)
        published = await self._publish(prepared)
        if not published:
            self.queued += 1
        return SentHit(receipt_id=prepared.receipt_id, published=published, body=prepared.body)

    async def _publish(self, prepared: PreparedReceipt) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                await self._receipts.publish(prepared)
        except (BusError, TimeoutError):
            log.info("hit receipt kept for later", extra={"receipt_id": prepared.receipt_id})
            return False
        await self._outbox.mark_sent([prepared.msg_id])  # only after JetStream's ack
        return True


@dataclass(frozen=True)
class ReportedHit:
    """A hit as the originator sees it, from its ledger entry."""

    alert_id: str
    agency: str
    node: str
    crossing_point: str
    matched: str
    occurred_at: str

    def to_json(self) -> dict[str, str]:
        return {
            "alert_id": self.alert_id,
            "agency": self.agency,
            "node": self.node,
            "crossing_point": self.crossing_point,
            "matched": self.matched,
            "occurred_at": self.occurred_at,
        }


def reported_hit(fields: Mapping[str, Any]) -> ReportedHit | None:
    """The hit a ledger entry's parsed fields record; None for any other entry."""
    if fields.get("type") != ReceiptType.HIT.value:
        return None
    detail = fields.get("detail") or {}
    return ReportedHit(
        alert_id=str(fields.get("alert_id")),
        agency=str(fields.get("actor_agency")),
        node=str(fields.get("actor_node")),
        crossing_point=str(detail.get("crossing_point", "")),
        matched=str(detail.get("matched", "")),
        occurred_at=str(fields.get("occurred_at")),
    )
