"""The TAXII server's view of a node's inbox: which alerts were added when, in that order.

TAXII pages a collection by the time each object was added to it (``added_after``, the
``X-TAXII-Date-Added-*`` headers). For a node that time is ``node_inbox.received_at``: when the
alert was stored here, not when its origin created it, so an alert that arrives late (a leaf node
back online) is still after the poller's last ``added_after``. Rows are ordered by
``(received_at, stream_seq)``, a total order, so a page can resume exactly.

The rows are read whole, sealed envelope included, one page in one query; opening them is the
feed's job (``services.feed``), which verifies each envelope again on every read.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from sqlalchemy import Table, select, tuple_
from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.ledger.tables import InboxRow
from blo_exchange.services.ports import InboxItem

__all__ = ["AddedAlert", "SqlTaxiiIndex"]

_INBOX = cast(Table, InboxRow.__table__)


@dataclass(frozen=True)
class AddedAlert:
    item: InboxItem
    received_at: datetime


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
        """Alerts for ``agency_id`` on this node from ``start`` (inclusive) and strictly after
        ``added_after``, oldest first; only those of ``border_pair`` when given."""
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
