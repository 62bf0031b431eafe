"""Signed ``hit`` receipts: telling a risk alert's originator that a lookout matched it, and where.

A hit is signed by the checking node like every receipt (``ReceiptPublisher.prepare``) and kept
in the node's outbox (its own database) *before* it is published, so a hit found while NATS or the
hub is unreachable is not lost: :meth:`HitReceipts.flush` publishes what is left, under the same
``Nats-Msg-Id``, and the node calls it every few seconds. The ledger writer appends it as a
``hit`` entry, which the originator's sent-alerts view reads.

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
from typing import Any, Final, Protocol

from blo_exchange.domain.ids import format_time
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.errors import BusError
from blo_exchange.services.ports import InboxItem
from blo_exchange.services.receipts import (
    PreparedReceipt,
    ReceiptPublisher,
    ReceiptType,
    deterministic_receipt_id,
)

__all__ = ["HitOutbox", "HitReceipts", "QueuedRecord", "ReportedHit", "SentHit", "reported_hit"]

log = logging.getLogger(__name__)

_FLUSH_BATCH: Final = 100


@dataclass(frozen=True)
class QueuedRecord:
    node_id: str
    receipt_id: str
    alert_id: str
    subject: str
    msg_id: str
    record: bytes


class HitOutbox(Protocol):
    async def add(self, item: QueuedRecord) -> None:
        """Keep a signed record until it is published (idempotent on the receipt id)."""
        ...

    async def unpublished(self, node_id: str, *, limit: int) -> list[QueuedRecord]:
        """Records not yet acknowledged by JetStream, oldest first."""
        ...

    async def published(self, node_id: str, receipt_id: str, stream_seq: int) -> None: ...


@dataclass(frozen=True)
class SentHit:
    receipt_id: str
    published: bool
    """False: kept in the outbox, to be published when the bus answers again."""
    body: dict[str, Any]


class HitReceipts:
    def __init__(
        self,
        *,
        receipts: ReceiptPublisher,
        outbox: HitOutbox,
        node_id: str,
        publish_timeout: float = 2.0,
    ) -> None:
        self._receipts = receipts
        self._outbox = outbox
        self._node_id = node_id
        self._timeout = publish_timeout
        self._flushing = asyncio.Lock()
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
        await self._outbox.add(_queued(self._node_id, row.alert_id, prepared))
        published = await self._publish(prepared)
        if not published:
            self.queued += 1
        return SentHit(receipt_id=prepared.receipt_id, published=published, body=prepared.body)

    async def flush(self) -> int:
        """Publish the outbox's waiting records in order; stops at the first the bus refuses.
        Returns how many were published."""
        sent = 0
        async with self._flushing:
            waiting = await self._outbox.unpublished(self._node_id, limit=_FLUSH_BATCH)
            for item in waiting:
                prepared = PreparedReceipt(
                    receipt_id=item.receipt_id,
                    subject=item.subject,
                    msg_id=item.msg_id,
                    raw=item.record,
                    body={},
                )
                if not await self._publish(prepared):
                    break
                sent += 1
        return sent

    async def _publish(self, prepared: PreparedReceipt) -> bool:
        try:
            async with asyncio.timeout(self._timeout):
                ack = await self._receipts.publish(prepared)
        except (BusError, TimeoutError):
            log.info("hit receipt kept for later", extra={"receipt_id": prepared.receipt_id})
            return False
        await self._outbox.published(self._node_id, prepared.receipt_id, ack.stream_seq)
        return True


def _queued(node_id: str, alert_id: str, prepared: PreparedReceipt) -> QueuedRecord:
    return QueuedRecord(
        node_id=node_id,
        receipt_id=prepared.receipt_id,
        alert_id=alert_id,
        subject=prepared.subject,
        msg_id=prepared.msg_id,
        record=prepared.raw,
    )


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
