"""Auditors' answers from verified bytes: the ledger as far as a signed checkpoint vouches for it.

The database's indexed columns (``actor_agency``, ``type``, …) are copies made for filtering;
only ``leaf_input`` is covered by the signed checkpoints. So an answer is never read off the
columns alone:

- :class:`VerifiedLedger` reads every row once, up to the latest signed checkpoint, recomputes
  each leaf hash from ``leaf_input`` and the tree's root from those, and accepts the rows only if
  that root is the checkpoint's (extending what it accepted before: a shrunk or rewritten prefix
  is an error too). On the way it checks that each row's columns agree with its ``leaf_input``.
  It keeps the verified leaf hashes (32 bytes an entry) and the ``alert_shared`` facts that the
  sharing summary counts, so the summary is computed from verified bytes only.
- :meth:`VerifiedLedger.check_served` checks each row a filtered query returns before it is
  served: its ``leaf_input`` has the leaf hash verified above, its columns agree with it, and
  the filter holds on the ``leaf_input`` itself.

- :meth:`VerifiedLedger.audit_columns` re-reads the columns of the next window of verified rows
  with each answer (round robin) against what their ``leaf_input`` says, so a column changed
  *after* its row was verified (hiding it from a filter) is found too: at once on a small
  ledger, within ``size / AUDIT_BATCH`` answers on a large one.

Any disagreement raises :class:`LedgerIntegrityError` naming the index: the auditor gets an error,
never a quietly wrong answer (and this node answers nothing more until it is restarted).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn

from blo_exchange.domain.ids import parse_time
from blo_exchange.errors import LedgerIntegrityError
from blo_exchange.ledger import merkle
from blo_exchange.ledger.entries import (
    column_mismatches,
    columns_digest,
    indexed_columns,
    parse_leaf_input,
)
from blo_exchange.ledger.ports import (
    EntryFilter,
    LedgerReads,
    SharingCount,
    StoredCheckpoint,
    StoredEntry,
)

__all__ = ["SharedFact", "VerifiedLedger", "count_sharing", "matches"]

SCAN_BATCH = 2000
AUDIT_BATCH = 2000


@dataclass(frozen=True, slots=True)
class SharedFact:
    """One ``alert_shared`` entry, as its verified ``leaf_input`` says."""

    occurred_at: datetime
    origin_agency: str
    recipients: tuple[str, ...]
    border_pair: str
    kind: str


def matches(fields: dict[str, Any], wanted: EntryFilter) -> bool:
    """Whether an entry's leaf fields satisfy ``wanted`` (the API's filters, on the bytes)."""
    if wanted.agency is not None and not (
        fields.get("actor_agency") == wanted.agency or wanted.agency in fields.get("recipients", [])
    ):
        return False
    for name in ("border_pair", "kind", "type", "alert_id"):
        value = getattr(wanted, name)
        if value is not None and fields.get(name) != value:
            return False
    if wanted.since is not None or wanted.until is not None:
        at = parse_time(str(fields.get("occurred_at")))
        if wanted.since is not None and at < wanted.since:
            return False
        if wanted.until is not None and at >= wanted.until:
            return False
    return True


def count_sharing(
    facts: Sequence[SharedFact], *, since: datetime | None = None, until: datetime | None = None
) -> list[SharingCount]:
    """``alert_shared`` facts counted by (origin, recipient ≠ origin, pair, kind), sorted."""
    counts: dict[tuple[str, str, str, str], int] = {}
    for f in facts:
        if (since is not None and f.occurred_at < since) or (
            until is not None and f.occurred_at >= until
        ):
            continue
        for recipient in f.recipients:
            if recipient != f.origin_agency:
                key = (f.origin_agency, recipient, f.border_pair, f.kind)
                counts[key] = counts.get(key, 0) + 1
    return [SharingCount(*key, count) for key, count in sorted(counts.items())]


def shared_fact(fields: dict[str, Any]) -> SharedFact | None:
    if fields.get("type") != "alert_shared":
        return None
    return SharedFact(
        occurred_at=parse_time(str(fields["occurred_at"])),
        origin_agency=str(fields["actor_agency"]),
        recipients=tuple(str(r) for r in fields.get("recipients") or []),
        border_pair=str(fields["border_pair"]),
        kind=str(fields["kind"]),
    )


class VerifiedLedger:
    """The prefix of the ledger this process checked against a signed checkpoint."""

    def __init__(self, store: LedgerReads) -> None:
        self._store = store
        self._range = merkle.CompactRange()
        self._leaf_hashes = bytearray()
        self._facts: list[SharedFact] = []
        self._column_digests = bytearray()  # 8 bytes an entry: what its columns must hold
        self._audit_at = 0
        self._failed: str | None = None
        self._lock = asyncio.Lock()

    @property
    def size(self) -> int:
        return self._range.size

    @property
    def facts(self) -> Sequence[SharedFact]:
        return tuple(self._facts)

    async def catch_up(self, checkpoint: StoredCheckpoint) -> None:
        """Verify the rows up to ``checkpoint`` (whose signature the caller checked)."""
        async with self._lock:
            if self._failed is not None:
                raise LedgerIntegrityError(self._failed)
            size = self._range.size
            if checkpoint.tree_size < size:
                raise LedgerIntegrityError(
                    f"the latest checkpoint has {checkpoint.tree_size} entries, fewer than the "
                    f"{size} verified before"
                )
            grown = self._range.copy()
            hashes = bytearray()
            digests = bytearray()
            facts: list[SharedFact] = []
            start = size
            while start < checkpoint.tree_size:
                end = min(start + SCAN_BATCH, checkpoint.tree_size)
                rows = await self._store.rows(start, end)
                batch: list[bytes] = []
                for expected, row in zip(range(start, end), rows, strict=False):
                    if row.index != expected:
                        raise LedgerIntegrityError(f"entry {expected} is missing")
                    batch.append(_checked_leaf(row))
                    fields = parse_leaf_input(row.leaf_input)
                    digests += columns_digest(indexed_columns(fields))
                    fact = shared_fact(fields)
                    if fact is not None:
                        facts.append(fact)
                if len(rows) != end - start:
                    raise LedgerIntegrityError(f"entries missing in [{start}, {end})")
                grown.extend(batch)
                hashes += b"".join(batch)
                start = end
            if grown.root() != checkpoint.root_hash:
                raise LedgerIntegrityError(
                    f"the entries [{size}, {checkpoint.tree_size}) do not reproduce the root of "
                    f"checkpoint {checkpoint.tree_size}"
                )
            self._range = grown
            self._leaf_hashes += hashes
            self._column_digests += digests
            self._facts += facts

    async def audit_columns(self, count: int = AUDIT_BATCH) -> None:
        """Re-check the indexed columns of the next ``count`` verified rows (round robin).

        A column changed after its row was verified would hide the row from a filtered answer
        without the served rows showing it; each answer re-reads a window of columns (only the
        columns: a few hundred bytes a row), so every row is looked at again, and a mismatch
        makes every answer of this node fail from then on.
        """
        async with self._lock:
            if self._failed is not None:
                raise LedgerIntegrityError(self._failed)
            size = self._range.size
            if size == 0:
                return
            start = self._audit_at if self._audit_at < size else 0
            end = min(start + count, size)
            rows = await self._store.column_rows(start, end)
            found = {index for index, _ in rows}
            for index in range(start, end):
                if index not in found:
                    self._fail(f"entry {index} is missing")
            for index, columns in rows:
                if columns_digest(columns) != bytes(
                    self._column_digests[8 * index : 8 * index + 8]
                ):
                    self._fail(
                        f"entry {index}: its indexed columns no longer agree with its leaf_input"
                    )
            self._audit_at = end

    def _fail(self, why: str) -> NoReturn:
        self._failed = why
        raise LedgerIntegrityError(why)

    def check_served(self, row: StoredEntry, wanted: EntryFilter) -> None:
        """Raise unless ``row`` may be served for ``wanted`` (after :meth:`catch_up`)."""
        h = _checked_leaf(row)
        if row.index >= self.size:
            raise LedgerIntegrityError(f"entry {row.index} is beyond the verified checkpoint")
        if bytes(self._leaf_hashes[32 * row.index : 32 * (row.index + 1)]) != h:
            raise LedgerIntegrityError(
                f"entry {row.index}: its leaf_input is not the one the checkpoint covers"
            )
        if not matches(parse_leaf_input(row.leaf_input), wanted):
            raise LedgerIntegrityError(
                f"entry {row.index}: its indexed columns match the filter, its leaf_input does not"
            )


def _checked_leaf(row: StoredEntry) -> bytes:
    """The leaf hash of ``row.leaf_input``, once the row agrees with itself."""
    h = merkle.leaf_hash(row.leaf_input)
    if h != row.leaf_hash:
        raise LedgerIntegrityError(
            f"entry {row.index}: leaf_input does not hash to its stored leaf hash"
        )
    wrong = column_mismatches(row.leaf_input, row.columns)
    if wrong:
        raise LedgerIntegrityError(
            f"entry {row.index}: the indexed column(s) {', '.join(wrong)} disagree with its "
            "leaf_input"
        )
    return h
