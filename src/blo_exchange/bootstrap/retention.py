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
from datetime import timedelta
from pathlib import Path

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.streams import ALERTS_STREAM
from blo_exchange.crypto.retention import EpochKeys
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.retention_store import SqlRetentionStore
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.domain.retention import stream_outlives_retention
from blo_exchange.services.ports import Directory, Inbox
from blo_exchange.services.receipts import ReceiptPublisher
from blo_exchange.services.retention import RetainingInbox
from blo_exchange.services.retention_files import NominalFiles
from blo_exchange.services.retention_review import RetentionReviews
from blo_exchange.services.retention_sweep import Clock, NominalSweeper
from blo_exchange.services.signed import SignedMessages

__all__ = ["RetentionRuntime"]

log = logging.getLogger(__name__)


@dataclass
class RetentionRuntime:
    inbox: RetainingInbox
    files: NominalFiles
    sweeper: NominalSweeper
    reviews: RetentionReviews
    interval: float
    _stopped: asyncio.Event
    stream_outlives: bool | None = None
    """Whether the alerts stream keeps envelopes longer than the shortest nominal retention
    (None: not known); see :meth:`check_stream`."""

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
            inbox=RetainingInbox(
                inner, node=node, store=store, keys=keys, directory=directory, clock=clock
            ),
            files=NominalFiles(node=node, store=store, keys=keys),
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

    async def check_stream(self, bus: BusConnection, directory: Directory, node: Node) -> None:
        """Warn when the alerts stream outlives the nominal retention: its original envelopes
        still carry the nominal part, its key sealed to the agency key (docs/threat-model.md)."""
        try:
            info = await bus.js.stream_info(ALERTS_STREAM.name)
            seconds = float(info.config.max_age or 0)
        except Exception:  # not allowed to ask, or NATS down: say nothing rather than guess
            log.info("could not read the alerts stream's max_age")
            return
        max_age = timedelta(seconds=seconds) if seconds > 0 else None
        agreements = await directory.agreements()
        self.stream_outlives = stream_outlives_retention(max_age, agreements, node.agency_id)
        if self.stream_outlives:
            log.warning(
                "the alerts stream keeps envelopes longer than the shortest nominal retention: "
                "who holds this agency's private key and the stream can still open erased "
                "nominal parts (docs/retention.md)",
                extra={"max_age_seconds": seconds or None},
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
