"""A node's personal-data lifecycle: its retaining inbox, sweeper and review service, composed.

The epoch keys live in ``<key dir>/retention/`` (``crypto.retention``); the sweeper runs every
``BLO_RETENTION_SWEEP_SECONDS`` on the clock given (the wall clock, or a test's fake one).
Extension records reach the node through its re-share consumer on ``BLO_RECEIPTS``, which hands
each record to :meth:`RetentionReviews.handle_record` first (``bootstrap.reshare``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from pathlib import Path

from blo_exchange.crypto.retention import EpochKeys
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.retention_store import SqlRetentionStore
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.ports import Directory, Inbox
from blo_exchange.services.receipts import ReceiptPublisher
from blo_exchange.services.retention import RetainingInbox
from blo_exchange.services.retention_review import RetentionReviews
from blo_exchange.services.retention_sweep import Clock, NominalSweeper
from blo_exchange.services.signed import SignedMessages

__all__ = ["RetentionRuntime"]

log = logging.getLogger(__name__)


@dataclass
class RetentionRuntime:
    inbox: RetainingInbox
    sweeper: NominalSweeper
    reviews: RetentionReviews
    interval: float
    _stopped: asyncio.Event

    @classmethod
    def build(
        cls,
        *,
        node: Node,
        key_dir: Path,
        sessions: SessionFactory,
        inner: Inbox,
        directory: Directory,
        receipts: ReceiptPublisher,
        clock: Clock,
        interval: float,
    ) -> RetentionRuntime:
        keys = EpochKeys(key_dir / "retention")
        store = SqlRetentionStore(sessions)
        return cls(
            inbox=RetainingInbox(inner, node=node, store=store, keys=keys, directory=directory),
            sweeper=NominalSweeper(
                node=node, store=store, keys=keys, receipts=receipts, clock=clock
            ),
            reviews=RetentionReviews(
                node=node,
                store=store,
                keys=keys,
                receipts=receipts,
                signed=SignedMessages(directory, clock=utc_now),  # key validity: real time
                clock=clock,
            ),
            interval=interval,
            _stopped=asyncio.Event(),
        )

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._run(), name="retention")]

    def stop(self) -> None:
        self._stopped.set()

    async def _run(self) -> None:
        while not self._stopped.is_set():
            try:
                await self.sweeper.sweep()
            except Exception:  # a database or bus outage: the next pass retries
                log.exception("retention sweep failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), self.interval)
