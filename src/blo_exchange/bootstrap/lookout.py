"""A node's search index, analyst search, lookout checks and hit receipts, and the background task
that keeps the index current.

The task runs every :data:`INTERVAL` seconds: it indexes what was stored since (at start-up,
everything already in the inbox: the backfill). An outage of Postgres only makes a round fail;
the next one tries again. Hit receipts go to the node's receipt outbox; the node's
``ReceiptRelay`` (bootstrap/node.py) publishes those the bus did not take at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Final

from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.db.held_connections import HeldConnections
from blo_exchange.db.search_store import SqlSearchStore
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.feed import FeedService
from blo_exchange.services.hits import HitReceipts
from blo_exchange.services.lookout import Lookout
from blo_exchange.services.ports import Directory, Inbox
from blo_exchange.services.receipt_queue import ReceiptQueue
from blo_exchange.services.receipts import ReceiptPublisher
from blo_exchange.services.registry import Services
from blo_exchange.services.search import AlertSearch
from blo_exchange.services.search_index import SearchIndex

__all__ = ["INTERVAL", "LookoutRuntime"]

INTERVAL: Final = 2.0

log = logging.getLogger(__name__)


@dataclass
class LookoutRuntime:
    index: SearchIndex
    search: AlertSearch
    hits: HitReceipts
    lookout: Lookout
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(
        cls,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        engine: AsyncEngine,
        held: HeldConnections,
        directory: Directory,
        inbox: Inbox,
        feed: FeedService,
        receipts: ReceiptPublisher,
        outbox: ReceiptQueue,
    ) -> LookoutRuntime:
        index = SearchIndex(
            node=node,
            kem_keys=kem_keys,
            directory=directory,
            inbox=inbox,
            store=SqlSearchStore(engine, held=held),
        )
        hits = HitReceipts(receipts=receipts, outbox=outbox, node_id=node.id)
        return cls(
            index=index,
            search=AlertSearch(index=index, feed=feed),
            hits=hits,
            lookout=Lookout(
                node=node,
                kem_keys=kem_keys,
                directory=directory,
                inbox=inbox,
                index=index,
                hits=hits,
                clock=utc_now,
            ),
        )

    def register(self, registry: Services) -> None:
        registry.add(SearchIndex, self.index)
        registry.add(AlertSearch, self.search)
        registry.add(Lookout, self.lookout)

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._run(), name="search-index")]

    def stop(self) -> None:
        self._stopping.set()

    async def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.index.catch_up()
            except Exception as exc:  # an outage: the next round tries again
                log.warning("search index round failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), INTERVAL)
