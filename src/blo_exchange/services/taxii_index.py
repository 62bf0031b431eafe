"""What the TAXII server needs from a node's inbox: alerts in the order they were added.

TAXII pages a collection by the time each object was added to it (``added_after``, the
``X-TAXII-Date-Added-*`` headers). For a node that time is when the alert was stored in its
inbox, not when its origin created it, so an alert that arrives late (a leaf node back online) is
still after a poller's last ``added_after``. The Postgres adapter is ``db.taxii_index``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from blo_exchange.services.ports import InboxItem

__all__ = ["AddedAlert", "TaxiiIndex"]


@dataclass(frozen=True)
class AddedAlert:
    item: InboxItem
    received_at: datetime


class TaxiiIndex(Protocol):
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
        """Alerts for ``agency_id`` on this node from ``start`` = (received_at, stream_seq)
        (inclusive) and received strictly after ``added_after``, in (received_at, stream_seq)
        order; only those of ``border_pair`` when given. The rows whole, envelope included."""
        ...
