"""Signed ``hit`` receipts waiting for JetStream, in the node's Postgres (``hit_outbox``,
migration 0007): the Postgres side of ``services.hits.HitOutbox``.

A row holds the exact signed bytes and the ``Nats-Msg-Id`` they are published under, so a
publish retried after an outage is the same message and JetStream keeps one. Rows stay after
they are published (with the stream sequence), as the node's own record of its hits.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import BigInteger, Index, LargeBinary, Table, Text, func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, mapped_column

from blo_exchange.db.tables import TZ, Base
from blo_exchange.services.hits import QueuedRecord

__all__ = ["HitOutboxRow", "SqlHitOutbox"]


class HitOutboxRow(Base):
    __tablename__ = "hit_outbox"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    receipt_id: Mapped[str] = mapped_column(Text, primary_key=True)
    alert_id: Mapped[str] = mapped_column(Text)
    subject: Mapped[str] = mapped_column(Text)
    msg_id: Mapped[str] = mapped_column(Text)
    record: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())
    published_at: Mapped[datetime | None] = mapped_column(TZ)
    stream_seq: Mapped[int | None] = mapped_column(BigInteger)

    __table_args__ = (
        Index(
            "ix_hit_outbox_unpublished",
            "node_id",
            "created_at",
            postgresql_where=text("published_at IS NULL"),
        ),
    )


_OUTBOX = cast(Table, HitOutboxRow.__table__)


class SqlHitOutbox:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def add(self, item: QueuedRecord) -> None:
        async with self._engine.begin() as conn:
            await conn.execute(
                insert(_OUTBOX)
                .values(
                    node_id=item.node_id,
                    receipt_id=item.receipt_id,
                    alert_id=item.alert_id,
                    subject=item.subject,
                    msg_id=item.msg_id,
                    record=item.record,
                )
                .on_conflict_do_nothing(index_elements=["node_id", "receipt_id"])
            )

    async def unpublished(self, node_id: str, *, limit: int) -> list[QueuedRecord]:
        c = _OUTBOX.c
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(c.node_id, c.receipt_id, c.alert_id, c.subject, c.msg_id, c.record)
                    .where(c.node_id == node_id, c.published_at.is_(None))
                    .order_by(c.created_at, c.receipt_id)
                    .limit(limit)
                )
            ).all()
        return [
            QueuedRecord(
                node_id=r.node_id,
                receipt_id=r.receipt_id,
                alert_id=r.alert_id,
                subject=r.subject,
                msg_id=r.msg_id,
                record=r.record,
            )
            for r in rows
        ]

    async def published(self, node_id: str, receipt_id: str, stream_seq: int) -> None:
        c = _OUTBOX.c
        async with self._engine.begin() as conn:
            await conn.execute(
                update(_OUTBOX)
                .where(c.node_id == node_id, c.receipt_id == receipt_id, c.published_at.is_(None))
                .values(published_at=func.now(), stream_seq=stream_seq)
            )
