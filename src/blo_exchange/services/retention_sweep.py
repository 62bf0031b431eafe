"""Erasing received nominal blocks when their retention ends, and saying so in the ledger.

The sweeper runs periodically in every node (``bootstrap.retention``), on an injected clock.
Each pass, in this order:

1. destroys every epoch key of a day that has begun (``day <= today``, UTC): from that moment
   no nominal part whose retention ended opens at this node, whatever else fails below;
2. for every recipient row due (``expires_at <= now``) and not yet marked erased: tells each
   erasure listener (derived data: a search index of nominal fields deletes its entries), sends
   a signed ``nominal_erased`` receipt (deterministic id: a re-sent one is deduplicated), then
   marks the row erased and drops its sealed part. A failure leaves the row for the next pass,
   which redoes the steps (listeners must be idempotent); the key stays destroyed.

Not here: the originating node's own copy (its agency's business, not this agreement's), and
the original envelope in the JetStream stream (docs/threat-model.md).
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import format_time
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType
from blo_exchange.services.retention import (
    EpochKeyStore,
    RetainedNominal,
    RetentionStore,
    send_about,
)

__all__ = ["Clock", "ErasureListener", "NominalSweeper"]

log = logging.getLogger(__name__)


class Clock(Protocol):
    def __call__(self) -> datetime: ...


class ErasureListener(Protocol):
    """Deletes what was derived from an alert's nominal block at this node. Called again for the
    same alert after a failed pass: must be idempotent."""

    async def nominal_erased(self, row: RetainedNominal) -> None: ...


class NominalSweeper:
    def __init__(
        self,
        *,
        node: Node,
        store: RetentionStore,
        keys: EpochKeyStore,
        receipts: ReceiptPublisher,
        clock: Clock,
        listeners: Sequence[ErasureListener] = (),
    ) -> None:
        self._node = node
        self._store = store
        self._keys = keys
        self._receipts = receipts
        self.clock = clock
        self.listeners: list[ErasureListener] = list(listeners)
        """Add derived-data deleters here (issue 16's search index)."""
        self.counts: Counter[str] = Counter()

    async def sweep(self) -> int:
        """One pass (module docstring); how many nominal blocks it erased."""
        now = self.clock()
        # (1) Destroy the keys first: the point of no return.
        for day in self._keys.days():
            if day <= now.date() and self._keys.destroy(day):
                self.counts["keys_destroyed"] += 1
        # (2) Listeners, receipt, mark: per row, in expiry order.
        erased = 0
        for row in await self._store.due(self._node.id, now):
            for listener in self.listeners:
                await listener.nominal_erased(row)
            await send_about(
                self._receipts,
                row,
                type=ReceiptType.NOMINAL_ERASED,
                key=("nominal_erased",),
                detail={
                    "origin_agency": row.origin_agency,
                    "expires_at": format_time(row.expires_at),
                    "erased_at": format_time(now),
                },
            )
            await self._store.update(replace(row, sealed=None, erased_at=now))
            erased += 1
        self.counts["erased"] += erased
        if erased:
            log.info("erased nominal blocks", extra={"count": erased})
        return erased
