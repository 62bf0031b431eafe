"""Signed receipts: a node's statement that it delivered, an analyst acknowledged, gave feedback
on, or the node rejected an alert. Published on ``blo.v1.receipts.<PAIR>``; the ledger writer turns
each into a ledger entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NotRequired, TypedDict, Unpack

from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.receipt import record_message_id, sign_receipt
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import format_time
from blo_exchange.domain.ledger import LedgerEntryType
from blo_exchange.domain.subjects import receipt_subject
from blo_exchange.services.ports import Publisher

__all__ = [
    "PreparedReceipt",
    "ReceiptFields",
    "ReceiptPublisher",
    "ReceiptType",
    "SentReceipt",
    "deterministic_receipt_id",
]

_NAMESPACE = uuid.UUID("6f1d3c1e-8a55-4d0e-9f3b-3b0c5a7e2d41")


class ReceiptType(StrEnum):
    DELIVERED = LedgerEntryType.ALERT_DELIVERED.value
    ACKNOWLEDGED = LedgerEntryType.ALERT_ACKNOWLEDGED.value
    FEEDBACK = LedgerEntryType.FEEDBACK.value
    REJECTED = LedgerEntryType.ALERT_REJECTED.value
    HIT = LedgerEntryType.HIT.value
    NOMINAL_ERASED = LedgerEntryType.NOMINAL_ERASED.value
    NOMINAL_RETENTION_EXTENDED = LedgerEntryType.NOMINAL_RETENTION_EXTENDED.value


def deterministic_receipt_id(*parts: str) -> str:
    """Same event → same id, so a receipt re-sent after a crash is deduplicated by JetStream.

    Predictable by design; that is why it is never the ``Nats-Msg-Id`` itself
    (:func:`~blo_exchange.crypto.receipt.record_message_id` is) and why the ledger keys records
    by their signing node and this id together.
    """
    return str(uuid.uuid5(_NAMESPACE, "|".join(parts)))


@dataclass(frozen=True)
class SentReceipt:
    receipt_id: str
    stream_seq: int
    body: dict[str, Any]
    duplicate: bool = False
    """The stream already had a record under this message id (a retry, or a re-sent step)."""


class ReceiptFields(TypedDict):
    """What a receipt's signer says; the node, agency and time are the publisher's own."""

    receipt_id: str
    type: StrEnum
    border_pair: str
    alert_id: str | None
    kind: str | None
    agreement_ids: list[str]
    envelope_sha256: str | None
    detail: NotRequired[dict[str, Any] | None]


@dataclass(frozen=True)
class PreparedReceipt:
    """A signed record not yet published: what an outbox keeps until JetStream has it."""

    receipt_id: str
    subject: str
    msg_id: str
    raw: bytes
    body: dict[str, Any]


class ReceiptPublisher:
    def __init__(
        self,
        *,
        node: Node,
        signer: SigningKey,
        publisher: Publisher,
        clock: Callable[[], datetime],
    ) -> None:
        self._node = node
        self._signer = signer
        self._publisher = publisher
        self._clock = clock

    async def send(self, **fields: Unpack[ReceiptFields]) -> SentReceipt:
        """Sign a receipt-shaped record (a receipt, or a re-share step: ``type``) and publish it
        on the pair's receipt subject; returns once the stream has it."""
        return await self.publish(self.prepare(**fields))

    def prepare(self, **fields: Unpack[ReceiptFields]) -> PreparedReceipt:
        """The signed record :meth:`send` publishes, dated now, without publishing it."""
        receipt_id, border_pair = fields["receipt_id"], fields["border_pair"]
        body: dict[str, Any] = {
            "receipt_id": receipt_id,
            "type": fields["type"].value,
            "alert_id": fields["alert_id"],
            "node": self._node.id,
            "agency": self._node.agency_id,
            "border_pair": border_pair,
            "kind": fields["kind"],
            "agreement_ids": fields["agreement_ids"],
            "envelope_sha256": fields["envelope_sha256"],
            "occurred_at": format_time(self._clock()),
            "detail": fields.get("detail") or {},
        }
        return PreparedReceipt(
            receipt_id=receipt_id,
            subject=receipt_subject(border_pair),
            msg_id=record_message_id(receipt_id, self._signer),
            raw=sign_receipt(body, self._signer),
            body=body,
        )

    async def publish(self, prepared: PreparedReceipt) -> SentReceipt:
        """Publish a prepared record; returns once the stream has it (raises ``BusError``)."""
        ack = await self._publisher.publish(prepared.subject, prepared.raw, msg_id=prepared.msg_id)
        return SentReceipt(
            receipt_id=prepared.receipt_id,
            stream_seq=ack.seq,
            body=prepared.body,
            duplicate=ack.duplicate,
        )
