"""The node's outbox of signed receipts waiting for NATS (``services.receipt_queue``), in Postgres:
receipts of alerts imported from packages and lookout hit receipts alike.

One row per receipt and node, unique by its ``Nats-Msg-Id`` (derived from the receipt id, so a
receipt kept twice is one row); ``payload`` is the exact signed bytes. ``sent_at`` is set after
JetStream acknowledged it; rows are kept after that. Nothing reads them for display: hits and
deliveries are shown from the ledger. Migration ``0007_package_receipts``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Identity,
    Index,
    LargeBinary,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.tables import TZ, Base
from blo_exchange.services.receipt_queue import QueuedReceipt

__all__ = ["PendingReceiptRow", "SqlReceiptQueue"]


class PendingReceiptRow(Base):
    __tablename__ = "pending_receipts"
    __table_args__ = (
        UniqueConstraint("node_id", "msg_id"),
        Index(
            "ix_pending_receipts_unsent",
            "node_id",
            "seq",
            postgresql_where=text("sent_at IS NULL"),
        ),
    )

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    node_id: Mapped[str] = mapped_column(Text)
    msg_id: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    queued_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(TZ, nullable=True)


class SqlReceiptQueue:
    def __init__(self, sessions: SessionFactory, *, node_id: str) -> None:
        self._sessions = sessions
        self._node_id = node_id

    async def put(self, subject: str, payload: bytes, msg_id: str) -> bool:
        async with self._sessions.begin() as session:
            seq = await session.scalar(
                insert(PendingReceiptRow)
                .values(node_id=self._node_id, msg_id=msg_id, subject=subject, payload=payload)
                .on_conflict_do_nothing(index_elements=["node_id", "msg_id"])
                .returning(PendingReceiptRow.seq)
            )
        return seq is not None

    async def unsent(self, limit: int) -> list[QueuedReceipt]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(PendingReceiptRow)
                    .where(
                        PendingReceiptRow.node_id == self._node_id,
                        PendingReceiptRow.sent_at.is_(None),
                    )
                    .order_by(PendingReceiptRow.seq)
                    .limit(limit)
                )
            ).all()
        return [QueuedReceipt(r.subject, bytes(r.payload), r.msg_id) for r in rows]

    async def mark_sent(self, msg_ids: Sequence[str]) -> None:
        if not msg_ids:
            return
        async with self._sessions.begin() as session:
            await session.execute(
                update(PendingReceiptRow)
                .where(
                    PendingReceiptRow.node_id == self._node_id,
                    PendingReceiptRow.msg_id.in_(list(msg_ids)),
                    PendingReceiptRow.sent_at.is_(None),
                )
                .values(sent_at=func.now())
            )
