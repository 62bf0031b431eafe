"""Appending to the ledger and reading it back: entries, Merkle nodes, checkpoints.

Appends happen in one transaction under an advisory lock, so indexes are assigned in a total
order and stay contiguous: an index is only taken by a commit, never by a sequence, so a rolled
back append leaves no gap. Each append also stores the perfect Merkle subtree hashes it completes
(at most log n per leaf), so roots and proofs never rehash the whole tree.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import insert

from blo_exchange.db.engine import SessionFactory, read_sessions
from blo_exchange.db.tables import (
    LedgerCheckpointRow,
    LedgerCosignatureRow,
    LedgerEntryRow,
    LedgerForkEvidenceRow,
    LedgerNodeRow,
    NodeRow,
    PublicKeyRow,
)
from blo_exchange.domain.ids import format_time
from blo_exchange.ledger import merkle
from blo_exchange.ledger.entries import INDEXED_COLUMNS
from blo_exchange.ledger.ports import (
    AppendGuard,
    EntryFilter,
    SharingCount,
    StoredCheckpoint,
    StoredEntry,
)
from blo_exchange.services.ports import NewLedgerEntry

__all__ = ["ENTRY_COLUMNS", "SqlLedgerStore"]

# Any constant shared by every writer; pg_advisory_xact_lock serialises appends.
_APPEND_LOCK = 0x626C6F4C  # "bloL"

WRITER_ROLE = "blo_ledger_writer"
"""The database role that alone may insert into the ledger tables (migration 0004); each
append and checkpoint transaction takes it with ``SET LOCAL ROLE``."""
_TAKE_WRITER_ROLE = text("SET LOCAL ROLE blo_ledger_writer")
_TAKE_LOCK = f"SELECT pg_advisory_xact_lock({_APPEND_LOCK})"
_SIZE_AND_KNOWN = (
    "SELECT (SELECT coalesce(max(idx) + 1, 0) FROM ledger_entries),"
    " array(SELECT event_id FROM ledger_entries WHERE event_id = any($1::text[]))"
)


ENTRY_COLUMNS = ("idx", "event_id", *INDEXED_COLUMNS, "leaf_input", "leaf_hash")
"""The columns of ``ledger_entries`` in the order the writer copies them."""


async def _driver(session: Any) -> Any:
    """The asyncpg connection under ``session``, inside the transaction the session began
    (checked: a statement sent before it would run, and commit, on its own)."""
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if not driver.is_in_transaction():
        raise RuntimeError("the ledger store's statements must run in a transaction")
    return driver


async def _copy(
    session: Any, table: str, columns: Sequence[str], records: Sequence[Sequence[Any]]
) -> None:
    """``COPY table (columns) FROM STDIN`` (binary) on the session's own connection, inside its
    transaction: one statement per batch, and no SQL text or parameters per row to build or
    parse (``make bench-ledger``, issue 14: about 1.7x the appends/s of the SQLAlchemy insert it
    replaced, against same-run baselines). The tables' statement triggers (writer role only,
    append only) fire for COPY as for INSERT."""
    await (await _driver(session)).copy_records_to_table(table, records=records, columns=columns)


def _conditions(wanted: EntryFilter) -> list[ColumnElement[bool]]:
    e = LedgerEntryRow
    conditions: list[ColumnElement[bool]] = []
    if wanted.agency is not None:
        conditions.append(
            or_(e.actor_agency == wanted.agency, e.recipients.any_() == wanted.agency)
        )
    if wanted.border_pair is not None:
        conditions.append(e.border_pair == wanted.border_pair)
    if wanted.kind is not None:
        conditions.append(e.kind == wanted.kind)
    if wanted.type is not None:
        conditions.append(e.type == wanted.type)
    if wanted.alert_id is not None:
        conditions.append(e.alert_id == wanted.alert_id)
    if wanted.since is not None:
        conditions.append(e.occurred_at >= wanted.since)
    if wanted.until is not None:
        conditions.append(e.occurred_at < wanted.until)
    return conditions


class SqlLedgerStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._reads = read_sessions(sessions)

    async def append(
        self, entries: Sequence[NewLedgerEntry], guard: AppendGuard | None = None
    ) -> list[int]:
        """Append the entries whose event ids are new; their indexes.

        With ``guard`` (the writer's journal), the ledger's size is first checked against what
        the writer appended, the new nodes are built on the writer's own frontier, and the batch
        is journaled before the commit; without one, on the stored nodes (tests, benchmarks).
        """
        if not entries:
            return []
        # A failure may come after the commit (the connection lost mid-COMMIT): the journaled
        # batch then stays pending, and the next append finds out whether it committed.
        indexes = await self._append(entries, guard)
        if guard is not None:
            guard.committed()
        return indexes

    async def _append(
        self, entries: Sequence[NewLedgerEntry], guard: AppendGuard | None
    ) -> list[int]:
        async with self._sessions.begin() as session:
            await session.execute(_TAKE_WRITER_ROLE)  # also begins the transaction
            driver = await _driver(session)
            await driver.execute(_TAKE_LOCK)
            # The size and which event ids are known, in one round trip, under the lock.
            ids = list({e.event_id for e in entries})
            size, known = await driver.fetchrow(_SIZE_AND_KNOWN, ids)
            size, existing = int(size), set(known)
            fresh: list[NewLedgerEntry] = []
            for entry in entries:
                if entry.event_id not in existing:
                    existing.add(entry.event_id)  # the same event twice in one batch
                    fresh.append(entry)
            if not fresh:
                return []
            if guard is None:
                frontier = await self._nodes(session, merkle.root_nodes(size))
            else:
                if size != guard.size or guard.pending_count:
                    end = min(size, guard.size + guard.pending_count + 1)
                    guard.reconcile(size, await self._leaf_hashes(session, guard.size, end))
                frontier = dict(guard.frontier())
            leaf_hashes = [merkle.leaf_hash(e.leaf_input) for e in fresh]
            new_nodes = merkle.append_many(size, leaf_hashes, lambda lv, ix: frontier[(lv, ix)])
            await _copy(
                session,
                "ledger_entries",
                ENTRY_COLUMNS,
                [
                    (
                        size + i,
                        e.event_id,
                        e.type,
                        e.alert_id,
                        e.actor_node,
                        e.actor_agency,
                        list(e.recipients),
                        e.border_pair,
                        e.kind,
                        e.occurred_at,
                        e.leaf_input,
                        leaf_hashes[i],
                    )
                    for i, e in enumerate(fresh)
                ],
            )
            await _copy(session, "ledger_tree_nodes", ("level", "idx", "hash"), new_nodes)
            if guard is not None:
                guard.prepare(size, leaf_hashes)  # durable before the commit below
        return [size + i for i in range(len(fresh))]

    @staticmethod
    async def _leaf_hashes(session: Any, start: int, end: int) -> list[bytes]:
        rows = await session.scalars(
            select(LedgerEntryRow.leaf_hash)
            .where(LedgerEntryRow.idx >= start, LedgerEntryRow.idx < end)
            .order_by(LedgerEntryRow.idx)
        )
        return [bytes(h) for h in rows.all()]

    async def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Those of ``event_ids`` already in the ledger: one lookup on the unique index."""
        wanted = list(set(event_ids))
        if not wanted:
            return set()
        query = select(LedgerEntryRow.event_id).where(LedgerEntryRow.event_id.in_(wanted))
        async with self._reads() as session:
            return set((await session.scalars(query)).all())

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

    async def nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        async with self._reads() as session:
            return await self._nodes(session, wanted)

    async def size(self) -> int:
        async with self._reads() as session:
            value = await session.scalar(select(func.coalesce(func.max(LedgerEntryRow.idx) + 1, 0)))
        return int(value or 0)

    async def entries(
        self, filters: EntryFilter, *, after: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """``(index, leaf_input)`` of matching entries with index > ``after``, in order."""
        query = (
            select(LedgerEntryRow.idx, LedgerEntryRow.leaf_input)
            .where(LedgerEntryRow.idx > after, *_conditions(filters))
            .order_by(LedgerEntryRow.idx)
            .limit(limit)
        )
        async with self._reads() as session:
            rows = (await session.execute(query)).all()
        return [(int(i), bytes(b)) for i, b in rows]

    async def entry_rows(
        self, filters: EntryFilter, *, after: int, before: int, limit: int
    ) -> list[StoredEntry]:
        """Rows the indexed columns say match, with ``after < index < before``, in order."""
        query = (
            select(LedgerEntryRow)
            .where(LedgerEntryRow.idx > after, LedgerEntryRow.idx < before, *_conditions(filters))
            .order_by(LedgerEntryRow.idx)
            .limit(limit)
        )
        async with self._reads() as session:
            rows = (await session.scalars(query)).all()
        return [_stored_entry(r) for r in rows]

    async def rows(self, start: int, end: int) -> list[StoredEntry]:
        query = (
            select(LedgerEntryRow)
            .where(LedgerEntryRow.idx >= start, LedgerEntryRow.idx < end)
            .order_by(LedgerEntryRow.idx)
        )
        async with self._reads() as session:
            rows = (await session.scalars(query)).all()
        return [_stored_entry(r) for r in rows]

    async def column_rows(self, start: int, end: int) -> list[tuple[int, dict[str, Any]]]:
        """``(index, indexed columns)`` of the rows with ``start <= index < end``, in order, as
        stored (``occurred_at`` a ``datetime``): what ``columns_digest`` takes."""
        e = LedgerEntryRow
        query = (
            select(
                e.idx,
                e.type,
                e.alert_id,
                e.actor_node,
                e.actor_agency,
                e.recipients,
                e.border_pair,
                e.kind,
                e.occurred_at,
            )
            .where(e.idx >= start, e.idx < end)
            .order_by(e.idx)
        )
        async with self._reads() as session:
            rows = (await session.execute(query)).all()
        return [
            (
                int(r[0]),
                {
                    "type": r[1],
                    "alert_id": r[2],
                    "actor_node": r[3],
                    "actor_agency": r[4],
                    "recipients": r[5] or [],
                    "border_pair": r[6],
                    "kind": r[7],
                    "occurred_at": r[8],
                },
            )
            for r in rows
        ]

    # --- roots and proofs: each fetches exactly the nodes merkle.*_nodes names, in one query ----

    async def root_at(self, size: int) -> bytes:
        """The root of the first ``size`` entries, from the stored perfect nodes."""
        async with self._reads() as session:
            nodes = await self._nodes(session, merkle.root_nodes(size))
        return merkle.root_hash(size, nodes)

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        async with self._reads() as session:
            nodes = await self._nodes(session, merkle.inclusion_proof_nodes(index, size))
        return merkle.inclusion_proof(index, size, nodes)

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        async with self._reads() as session:
            nodes = await self._nodes(session, merkle.consistency_proof_nodes(first, second))
        return merkle.consistency_proof(first, second, nodes)

    # --- checkpoints ----------------------------------------------------------------------------

    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        query = select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.tree_size.desc()).limit(1)
        async with self._reads() as session:
            row = await session.scalar(query)
        return None if row is None else _checkpoint(row)

    async def checkpoints(self, *, up_to: int | None = None) -> list[StoredCheckpoint]:
        """Every stored checkpoint (of size at most ``up_to``), smallest first."""
        query = select(LedgerCheckpointRow).order_by(LedgerCheckpointRow.tree_size)
        if up_to is not None:
            query = query.where(LedgerCheckpointRow.tree_size <= up_to)
        async with self._reads() as session:
            rows = (await session.scalars(query)).all()
        return [_checkpoint(r) for r in rows]

    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> bool:
        """Store a signed checkpoint; False when that tree size already has one."""
        async with self._sessions.begin() as session:
            await session.execute(_TAKE_WRITER_ROLE)
            result = await session.execute(
                insert(LedgerCheckpointRow)
                .values(
                    tree_size=checkpoint.tree_size,
                    root_hash=checkpoint.root_hash,
                    note=checkpoint.note,
                )
                .on_conflict_do_nothing(index_elements=["tree_size"])
                .returning(LedgerCheckpointRow.tree_size)
            )
            return result.first() is not None

    # --- witnesses ------------------------------------------------------------------------------

    async def add_cosignature(self, tree_size: int, witness: str, line: str) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                insert(LedgerCosignatureRow)
                .values(tree_size=tree_size, witness=witness, line=line)
                .on_conflict_do_nothing(index_elements=["tree_size", "witness"])
            )

    async def add_fork_evidence(
        self, witness: str, reason: str, cosigned_note: str, conflicting_note: str
    ) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                insert(LedgerForkEvidenceRow).values(
                    witness=witness,
                    reason=reason,
                    cosigned_note=cosigned_note,
                    conflicting_note=conflicting_note,
                )
            )

    async def fork_evidence(self) -> list[dict[str, Any]]:
        query = select(LedgerForkEvidenceRow).order_by(LedgerForkEvidenceRow.id)
        async with self._reads() as session:
            rows = (await session.scalars(query)).all()
        return [
            {
                "witness": r.witness,
                "reason": r.reason,
                "cosigned_note": r.cosigned_note,
                "conflicting_note": r.conflicting_note,
                "seen_at": r.created_at.isoformat(),
            }
            for r in rows
        ]

    async def cosignature_lines(self, sizes: Sequence[int]) -> dict[int, list[str]]:
        """The stored cosignature lines of the checkpoints of ``sizes`` (unverified)."""
        if not sizes:
            return {}
        query = (
            select(LedgerCosignatureRow.tree_size, LedgerCosignatureRow.line)
            .where(LedgerCosignatureRow.tree_size.in_(list(sizes)))
            .order_by(LedgerCosignatureRow.tree_size, LedgerCosignatureRow.witness)
        )
        out: dict[int, list[str]] = {}
        async with self._reads() as session:
            for size, line in (await session.execute(query)).all():
                out.setdefault(int(size), []).append(line)
        return out

    async def largest_cosigned(self, at_least: int) -> int | None:
        """The largest checkpoint size with ``at_least`` stored cosignatures; None if none."""
        query = (
            select(LedgerCosignatureRow.tree_size)
            .group_by(LedgerCosignatureRow.tree_size)
            .having(func.count() >= at_least)
            .order_by(LedgerCosignatureRow.tree_size.desc())
            .limit(1)
        )
        async with self._reads() as session:
            value = await session.scalar(query)
        return None if value is None else int(value)

    async def witness_keys(self) -> list[tuple[str, bytes]]:
        """``(node id, Ed25519 public key)`` of every unrevoked witness key row: what a process
        without pinned roots believes (with them, ``SignedDirectory.witness_keys``)."""
        query = (
            select(PublicKeyRow.owner_id, PublicKeyRow.public)
            .where(PublicKeyRow.owner_kind == "witness", PublicKeyRow.revoked_at.is_(None))
            .order_by(PublicKeyRow.owner_id, PublicKeyRow.key_id)
        )
        async with self._reads() as session:
            return [(str(o), bytes(p)) for o, p in (await session.execute(query)).all()]

    async def node_keys(self) -> dict[str, dict[str, Any]]:
        """Every node's agency and Ed25519 keys (revoked ones too), as the directory rows have them
        (with pinned roots, ``SignedDirectory.node_keys`` instead):
        ``{node: {"agency", "keys": [{"key_id", "public" (bytes), "revoked_at"}]}}``."""
        async with self._reads() as session:
            nodes = dict((await session.execute(select(NodeRow.id, NodeRow.agency_id))).all())
            keys = (
                await session.scalars(
                    select(PublicKeyRow)
                    .where(PublicKeyRow.owner_kind == "node", PublicKeyRow.alg == "Ed25519")
                    .order_by(PublicKeyRow.owner_id, PublicKeyRow.key_id)
                )
            ).all()
        out: dict[str, dict[str, Any]] = {
            str(n): {"agency": str(a), "keys": []} for n, a in nodes.items()
        }
        for k in keys:
            if k.owner_id in out:
                out[k.owner_id]["keys"].append(
                    {
                        "key_id": k.key_id,
                        "public": bytes(k.public),
                        "revoked_at": None if k.revoked_at is None else format_time(k.revoked_at),
                    }
                )
        return out

    # --- export and statistics ------------------------------------------------------------------

    async def leaves(self, size: int) -> list[tuple[int, bytes, bytes]]:
        """``(index, leaf_input, stored leaf_hash)`` of the first ``size`` entries, in order."""
        query = (
            select(LedgerEntryRow.idx, LedgerEntryRow.leaf_input, LedgerEntryRow.leaf_hash)
            .where(LedgerEntryRow.idx < size)
            .order_by(LedgerEntryRow.idx)
        )
        async with self._reads() as session:
            rows = (await session.execute(query)).all()
        return [(int(i), bytes(b), bytes(h)) for i, b, h in rows]

    async def sharing(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[SharingCount]:
        """Counts of ``alert_shared`` entries by (origin agency, recipient agency, pair, kind).

        An origin agency listed among its own alert's recipients is not counted as sharing.
        """
        e = LedgerEntryRow
        recipient = func.unnest(e.recipients).label("recipient")
        inner = select(e.actor_agency.label("origin"), recipient, e.border_pair, e.kind).where(
            e.type == "alert_shared"
        )
        if since is not None:
            inner = inner.where(e.occurred_at >= since)
        if until is not None:
            inner = inner.where(e.occurred_at < until)
        sub = inner.subquery()
        query = (
            select(sub.c.origin, sub.c.recipient, sub.c.border_pair, sub.c.kind, func.count())
            .where(sub.c.recipient != sub.c.origin)
            .group_by(sub.c.origin, sub.c.recipient, sub.c.border_pair, sub.c.kind)
            .order_by(sub.c.origin, sub.c.recipient, sub.c.border_pair, sub.c.kind)
        )
        async with self._reads() as session:
            rows = (await session.execute(query)).all()
        return [SharingCount(str(o), str(r), str(b), str(k), int(n)) for o, r, b, k, n in rows]


def _stored_entry(row: LedgerEntryRow) -> StoredEntry:
    return StoredEntry(
        index=int(row.idx),
        leaf_input=bytes(row.leaf_input),
        leaf_hash=bytes(row.leaf_hash),
        columns={
            "type": row.type,
            "alert_id": row.alert_id,
            "actor_node": row.actor_node,
            "actor_agency": row.actor_agency,
            "recipients": sorted(row.recipients or []),
            "border_pair": row.border_pair,
            "kind": row.kind,
            "occurred_at": format_time(row.occurred_at),
        },
    )


def _checkpoint(row: LedgerCheckpointRow) -> StoredCheckpoint:
    return StoredCheckpoint(int(row.tree_size), bytes(row.root_hash), row.note)
