"""An analyst's receipt on an alert: acknowledged, or feedback with what acting on it gave.

Signed by this node and published (so the origin and the ledger see it); the same for the JSON
API and the pages. Only an analyst of an agency the alert was addressed to, on a node that holds
it, may send one.
"""

from __future__ import annotations

from typing import Any

from blo_exchange.domain.alerts import ReceiptRequest
from blo_exchange.domain.directory import Node, Principal
from blo_exchange.errors import NotFound
from blo_exchange.services.feed import FeedService
from blo_exchange.services.ports import Inbox
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType, deterministic_receipt_id

__all__ = ["AnalystReceipts"]


class AnalystReceipts:
    def __init__(
        self, *, node: Node, feed: FeedService, inbox: Inbox, receipts: ReceiptPublisher
    ) -> None:
        self._node = node
        self._feed = feed
        self._inbox = inbox
        self._receipts = receipts

    async def send(
        self, principal: Principal, alert_id: str, body: ReceiptRequest
    ) -> dict[str, Any]:
        # (1) an analyst; (2) of an agency this node holds the alert for; (3) the alert still
        # verifies and opens (``feed.get`` checks both), so a receipt never names a forgery.
        self._feed.require_analyst(principal)
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or row.agency_id != principal.agency_id:
            raise NotFound("no such alert")
        opened = await self._feed.get(principal, alert_id)
        receipt_type = (
            ReceiptType.ACKNOWLEDGED if body.type == "acknowledged" else ReceiptType.FEEDBACK
        )
        outcome = None if body.outcome is None else body.outcome.value
        sent = await self._receipts.send(
            receipt_id=deterministic_receipt_id(
                alert_id, self._node.id, principal.id, receipt_type.value, outcome or ""
            ),
            type=receipt_type,
            border_pair=row.border_pair,
            alert_id=alert_id,
            kind=row.kind,
            agreement_ids=[str(a) for a in opened["header"]["agreement_ids"]],
            envelope_sha256=row.envelope_sha256,
            detail={"principal": principal.id} | ({"outcome": outcome} if outcome else {}),
        )
        return {
            "receipt_id": sent.receipt_id,
            "type": receipt_type.value,
            "stream_seq": sent.stream_seq,
        }
