"""The Postgres side of ``services.taxii_index``: a node's inbox in the order it was filled.

The time an alert was added is ``node_inbox.received_at``. Rows are ordered by
``(received_at, stream_seq)``, a total order, so a page can resume exactly.

The rows are read whole, sealed envelope included, one page in one query; opening them is the
feed's job (``services.feed``), which verifies each envelope again on every read.
"""

from __future__ import annotations

from datetime import datetime
from typing import cast

from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.db.tables import InboxRow
from blo_exchange.services.ports import InboxItem
from blo_exchange.services.taxii_index import AddedAlert

__all__ = ["SqlTaxiiIndex"]

_INBOX = cast(Table, InboxRow.__table__)


class SqlTaxiiIndex:
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    async def added(
        self,
        node_id: str,
        agency_id: str,
        *,
        border_pair: str | None,
        start: tuple[datetime, int] | None,
        added_after: datetime | None,
        limit: int,
    ) -> list[AddedAlert]:
        c = _INBOX.c
        query = select(_INBOX).where(c.node_id == node_id, c.agency_id == agency_id)
        if border_pair is not None:
            query = query.where(c.border_pair == border_pair)
        if start is not None:
            query = query.where(tuple_(c.received_at, c.stream_seq) >= tuple_(*start))
        if added_after is not None:
            query = query.where(c.received_at > added_after)
        query = query.order_by(c.received_at, c.stream_seq).limit(limit)
        async with self._engine.connect() as conn:
            rows = (await conn.execute(query)).all()
        return [
            AddedAlert(
                InboxItem(
                    node_id=r.node_id,
                    alert_id=r.alert_id,
                    agency_id=r.agency_id,
                    origin_agency=r.origin_agency,
                    origin_node=r.origin_node,
                    border_pair=r.border_pair,
                    kind=r.kind,
                    tlp=r.tlp,
                    created_at=r.created_at,
                    stream_seq=r.stream_seq,
                    envelope=r.envelope,
                    envelope_sha256=r.envelope_sha256,
                ),
                r.received_at,
            )
            for r in rows
        ]
