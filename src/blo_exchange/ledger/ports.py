"""What the audit log needs from storage, as Protocols, and the values that cross them.

``db.ledger_store.SqlLedgerStore`` implements every one; the ledger's use cases (the writer, the
checkpointer, auditors' reads) and the edges (``api``, ``web``) see only these.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "AppendGuard",
    "CheckpointStore",
    "EntryFilter",
    "LedgerReads",
    "SharingCount",
    "StatementKeys",
    "StoredCheckpoint",
    "StoredEntry",
]


@dataclass(frozen=True, slots=True)
class EntryFilter:
    """Filters of ``GET /v1/ledger/entries``; every one optional, all combined with AND."""

    agency: str | None = None
    border_pair: str | None = None
    kind: str | None = None
    type: str | None = None
    alert_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoredCheckpoint:
    """A row of ``ledger_checkpoints``: verified when it was signed, not when it is read back."""

    tree_size: int
    root_hash: bytes
    note: str


@dataclass(frozen=True, slots=True)
class StoredEntry:
    """A row of ``ledger_entries`` as stored: nothing here is believed before it is checked.

    ``columns`` are the indexed columns in the JSON form of ``entries.indexed_columns``.
    """

    index: int
    leaf_input: bytes
    leaf_hash: bytes
    columns: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class SharingCount:
    """How many ``alert_shared`` entries went from one agency to another, per pair and kind."""

    origin_agency: str
    recipient_agency: str
    border_pair: str
    kind: str
    count: int


class AppendGuard(Protocol):
    """The writer's own memory (``ledger.journal.WriterJournal``), consulted inside the append
    transaction: the database is not believed about what the writer appended."""

    @property
    def size(self) -> int: ...
    @property
    def pending_count(self) -> int: ...
    def reconcile(self, stored_size: int, stored_hashes: Sequence[bytes]) -> None: ...
    def frontier(self) -> Mapping[tuple[int, int], bytes]: ...
    def prepare(self, start: int, leaf_hashes: Sequence[bytes]) -> None: ...
    def committed(self) -> None: ...


class LedgerReads(Protocol):
    """What auditors' answers are read from."""

    async def size(self) -> int: ...
    async def entries(
        self, wanted: EntryFilter, *, after: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """``(index, leaf_input)`` of matching entries with index > ``after``, in order."""
        ...

    async def entry_rows(
        self, wanted: EntryFilter, *, after: int, before: int, limit: int
    ) -> list[StoredEntry]:
        """Rows the indexed columns say match, ``after < index < before``, in order."""
        ...

    async def column_rows(self, start: int, end: int) -> list[tuple[int, dict[str, Any]]]:
        """``(index, indexed columns)`` of the rows in ``[start, end)``, in order."""
        ...

    async def rows(self, start: int, end: int) -> list[StoredEntry]:
        """The rows with ``start <= index < end``, in order (a gap is the caller's to find)."""
        ...

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]: ...
    async def consistency_proof(self, first: int, second: int) -> list[bytes]: ...
    async def latest_checkpoint(self) -> StoredCheckpoint | None: ...
    async def checkpoints(self, *, up_to: int | None = None) -> list[StoredCheckpoint]: ...
    async def nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]: ...
    async def leaves(self, size: int) -> list[tuple[int, bytes, bytes]]: ...
    async def sharing(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[SharingCount]: ...
    async def cosignature_lines(self, sizes: Sequence[int]) -> dict[int, list[str]]: ...
    async def largest_cosigned(self, at_least: int) -> int | None: ...
    async def witness_keys(self) -> list[tuple[str, bytes]]: ...
    async def fork_evidence(self) -> list[dict[str, Any]]: ...
    async def node_keys(self) -> dict[str, dict[str, Any]]: ...


class StatementKeys(Protocol):
    """The witness and node keys that agency-signed statements grant, and those statements
    (``services.statements.TrustedDirectory``): where roots are pinned, what the ledger's readers
    believe instead of ``LedgerReads.witness_keys`` and ``node_keys`` (database rows)."""

    async def witness_keys(self) -> list[tuple[str, bytes]]: ...
    async def node_keys(self) -> dict[str, dict[str, Any]]: ...
    async def statement_texts(self) -> list[str]: ...


class CheckpointStore(Protocol):
    """What the checkpointer reads and writes."""

    async def size(self) -> int: ...
    async def root_at(self, size: int) -> bytes: ...
    async def consistency_proof(self, first: int, second: int) -> list[bytes]: ...
    async def latest_checkpoint(self) -> StoredCheckpoint | None: ...
    async def add_checkpoint(self, checkpoint: StoredCheckpoint) -> bool: ...
    async def checkpoints(self, *, up_to: int | None = None) -> list[StoredCheckpoint]: ...
    async def nodes(self, wanted: Sequence[tuple[int, int]]) -> dict[tuple[int, int], bytes]: ...
