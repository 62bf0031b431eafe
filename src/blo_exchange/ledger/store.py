"""Appending to the ledger and reading it back: entries, Merkle nodes, checkpoints.

Appends happen in one transaction under an advisory lock, so indexes are assigned in a total
order and stay contiguous: an index is only taken by a commit, never by a sequence, so a rolled
back append leaves no gap. Each append also stores the perfect Merkle subtree hashes it completes
(at most log n per leaf), so roots and proofs never rehash the whole tree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert

from blo_exchange.ledger import merkle
from blo_exchange.ledger.db import SessionFactory
from blo_exchange.ledger.tables import LedgerEntryRow, LedgerNodeRow
from blo_exchange.services.ports import NewLedgerEntry

__all__ = ["EntryFilter", "SqlLedgerStore"]

# Any constant shared by every writer; pg_advisory_xact_lock serialises appends.
_APPEND_LOCK = 0x626C6F4C  # "bloL"


class EntryFilter:
    """Filters of ``GET /v1/ledger/entries``; every one optional, all combined with AND."""

    def __init__(
        self,
        *,
        agency: str | None = None,
        border_pair: str | None = None,
        kind: str | None = None,
        type: str | None = None,
        alert_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> None:
        self.agency = agency
        self.border_pair = border_pair
        self.kind = kind
        self.type = type
        self.alert_id = alert_id
        self.since = since
        self.until = until

    def conditions(self) -> list[ColumnElement[bool]]:
        e = LedgerEntryRow
        wanted: list[ColumnElement[bool]] = []
        if self.agency is not None:
            wanted.append(or_(e.actor_agency == self.agency, e.recipients.any_() == self.agency))
        if self.border_pair is not None:
            wanted.append(e.border_pair == self.border_pair)
        if self.kind is not None:
            wanted.append(e.kind == self.kind)
        if self.type is not None:
            wanted.append(e.type == self.type)
        if self.alert_id is not None:
            wanted.append(e.alert_id == self.alert_id)
        if self.since is not None:
            wanted.append(e.occurred_at >= self.since)
        if self.until is not None:
            wanted.append(e.occurred_at < self.until)
        return wanted


class SqlLedgerStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def append(self, entries: Sequence[NewLedgerEntry]) -> list[int]:
        if not entries:
            return []
        async with self._sessions.begin() as session:
            await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _APPEND_LOCK})
            ids = list({e.event_id for e in entries})
            existing = set(
                (
                    await session.scalars(
                        select(LedgerEntryRow.event_id).where(LedgerEntryRow.event_id.in_(ids))
                    )
                ).all()
            )
            fresh: list[NewLedgerEntry] = []
            for entry in entries:
                if entry.event_id not in existing:
                    existing.add(entry.event_id)  # the same event twice in one batch
                    fresh.append(entry)
            if not fresh:
                return []
            size = int(
                await session.scalar(select(func.coalesce(func.max(LedgerEntryRow.idx) + 1, 0)))
                or 0
            )
            frontier = await self._nodes(session, merkle.root_nodes(size))
            leaf_hashes = [merkle.leaf_hash(e.leaf_input) for e in fresh]
            new_nodes = merkle.append_many(size, leaf_hashes, lambda lv, ix: frontier[(lv, ix)])
            await session.execute(
                insert(LedgerEntryRow),
                [
                    {
                        "idx": size + i,
                        "event_id": e.event_id,
                        "type": e.type,
                        "alert_id": e.alert_id,
                        "actor_node": e.actor_node,
                        "actor_agency": e.actor_agency,
                        "recipients": list(e.recipients),
                        "border_pair": e.border_pair,
                        "kind": e.kind,
                        "occurred_at": e.occurred_at,
                        "leaf_input": e.leaf_input,
                        "leaf_hash": leaf_hashes[i],
                    }
                    for i, e in enumerate(fresh)
                ],
            )
            await session.execute(
                insert(LedgerNodeRow),
                [{"level": lv, "idx": ix, "hash": h} for lv, ix, h in new_nodes],
            )
        return [size + i for i in range(len(fresh))]

    @staticmethod
    async def _nodes(
        session: Any, wanted: Sequence[tuple[int, int]]
    ) -> dict[tuple[int, int], bytes]:
        if not wanted:
            return {}
        rows = await session.execute(
            select(LedgerNodeRow.level, LedgerNodeRow.idx, LedgerNodeRow.hash).where(
                tuple_(LedgerNodeRow.level, LedgerNodeRow.idx).in_(list(wanted))
            )
        )
        return {(int(lv), int(ix)): bytes(h) for lv, ix, h in rows}

    async def size(self) -> int:
        async with self._sessions() as session:
            value = await session.scalar(select(func.coalesce(func.max(LedgerEntryRow.idx) + 1, 0)))
        return int(value or 0)

    async def entries(
        self, filters: EntryFilter, *, after: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """``(index, leaf_input)`` of matching entries with index > ``after``, in order."""
        query = (
            select(LedgerEntryRow.idx, LedgerEntryRow.leaf_input)
            .where(LedgerEntryRow.idx > after, *filters.conditions())
            .order_by(LedgerEntryRow.idx)
            .limit(limit)
        )
        async with self._sessions() as session:
            rows = (await session.execute(query)).all()
        return [(int(i), bytes(b)) for i, b in rows]
