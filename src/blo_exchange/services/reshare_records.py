"""Re-share records: signing and publishing each step, and reading a request back from one.

Each step of a re-share is a receipt-shaped record (the ledger writer's format), signed by the
node that publishes it, on the receipt subject of the alert's border pair.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from blo_exchange.crypto.keys import SigningKey
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import parse_time
from blo_exchange.services.ports import Publisher
from blo_exchange.services.receipts import ReceiptPublisher, SentReceipt, deterministic_receipt_id
from blo_exchange.services.reshare_model import (
    MAX_REASON_CHARS,
    ReshareRecord,
    ReshareRequest,
    ReshareStatus,
)

__all__ = ["ReshareRecords", "opt_str", "request_detail", "request_from_record"]

log = logging.getLogger(__name__)


class ReshareRecords:
    def __init__(
        self,
        *,
        node: Node,
        signer: SigningKey,
        publisher: Publisher,
        clock: Callable[[], datetime],
    ) -> None:
        self._receipts = ReceiptPublisher(
            node=node, signer=signer, publisher=publisher, clock=clock
        )

    async def publish(
        self,
        type: ReshareRecord,
        request: ReshareRequest,
        *,
        detail: dict[str, Any],
        receipt_id: str | None = None,
        envelope_sha256: str | None = None,
    ) -> SentReceipt:
        """Sign and publish one step as a receipt-shaped record (the ledger writer's format)."""
        return await self._receipts.send(
            receipt_id=receipt_id or deterministic_receipt_id(request.request_id, type.value),
            type=type,
            border_pair=request.border_pair,
            alert_id=request.alert_id,
            kind=request.kind,
            agreement_ids=list(request.agreement_ids),
            envelope_sha256=envelope_sha256,
            detail=detail,
        )

    async def publish_decision(self, decided: ReshareRequest) -> None:
        """Approvals and denials of one request share one message id: the stream keeps one."""
        approve = decided.status is ReshareStatus.APPROVED
        ack = await self.publish(
            ReshareRecord.APPROVED if approve else ReshareRecord.DENIED,
            decided,
            receipt_id=deterministic_receipt_id(decided.request_id, "reshare_decision"),
            detail={
                "request_id": decided.request_id,
                "target_agency": decided.target_agency,
                "decided_by": decided.decided_by,
                "decision_reason": decided.decision_reason,
            }
            | ({"new_alert_id": decided.new_alert_id} if approve else {}),
        )
        if ack.duplicate:
            log.info("decision on re-share request %s was published before", decided.request_id)


def request_detail(request: ReshareRequest) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "target_agency": request.target_agency,
        "reason": request.reason,
        "requested_by": request.requested_by,
        "origin_agency": request.origin_agency,
        "origin_node": request.origin_node,
        "tlp": request.tlp,
        "restricted": request.restricted,
    }


def request_from_record(node_id: str, body: Mapping[str, Any]) -> ReshareRequest:
    detail = body["detail"]
    return ReshareRequest(
        node_id=node_id,
        request_id=str(detail["request_id"]),
        alert_id=str(body["alert_id"]),
        border_pair=str(body["border_pair"]),
        kind=str(body["kind"]),
        tlp=str(detail["tlp"]),
        origin_agency=str(detail["origin_agency"]),
        origin_node=str(detail["origin_node"]),
        requesting_agency=str(body["agency"]),
        requesting_node=str(body["node"]),
        requested_by=str(detail["requested_by"]),
        target_agency=str(detail["target_agency"]),
        reason=str(detail["reason"])[:MAX_REASON_CHARS],
        restricted=bool(detail["restricted"]),
        agreement_ids=tuple(str(a) for a in body.get("agreement_ids") or ()),
        status=ReshareStatus.PENDING,
        requested_at=parse_time(str(body["occurred_at"])),
    )


def opt_str(value: object) -> str | None:
    return None if value is None else str(value)[:MAX_REASON_CHARS]
