"""The ledger store appends by COPY (issue 14): the writer-role trigger still holds for COPY, and
batches stay gapless and idempotent on a real Postgres."""

from __future__ import annotations

from datetime import UTC, datetime

import asyncpg
import pytest

from blo_exchange.db.engine import create_engine, migrate, session_factory
from blo_exchange.db.ledger_store import ENTRY_COLUMNS, SqlLedgerStore
from blo_exchange.ledger import merkle
from blo_exchange.ledger.entries import build_entry
from blo_exchange.services.ports import NewLedgerEntry

NOW = datetime(2026, 11, 28, 6, 40, tzinfo=UTC)


def entry(n: int) -> NewLedgerEntry:
    return build_entry(
        event_id=f"key_registered:k{n}", type="key_registered", occurred_at=NOW, detail={"n": n}
    )


async def test_a_copy_into_the_ledger_under_another_role_is_refused(database_url: str) -> None:
    await migrate(database_url)
    e = entry(1)
    row = (e.occurred_at, e.leaf_input, merkle.leaf_hash(e.leaf_input))
    conn = await asyncpg.connect(database_url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        # The statement trigger fires for COPY as for INSERT: only blo_ledger_writer may add rows.
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="only the ledger writer"):
            await conn.copy_records_to_table(
                "ledger_entries",
                records=[(0, e.event_id, e.type, None, None, None, [], None, None, *row)],
                columns=ENTRY_COLUMNS,
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="only the ledger writer"):
            await conn.copy_records_to_table(
                "ledger_tree_nodes", records=[(0, 0, bytes(32))], columns=["level", "idx", "hash"]
            )
        assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 0
    finally:
        await conn.close()


async def test_copied_batches_are_gapless_idempotent_and_give_the_merkle_root(
    database_url: str,
) -> None:
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=2)
    try:
        store = SqlLedgerStore(session_factory(engine))
        first = [entry(n) for n in range(5)]
        assert await store.append([*first, first[2]]) == [0, 1, 2, 3, 4]  # a repeat in a batch
        assert await store.append(first[3:]) == []  # a redelivered batch adds nothing
        second = [entry(n) for n in range(3, 12)]
        assert await store.append(second) == list(range(5, 12))
        assert await store.size() == 12
        leaves = [merkle.leaf_hash(e.leaf_input) for e in [*first, *second[2:]]]
        expected = merkle.CompactRange()
        expected.extend(leaves)
        assert await store.root_at(12) == expected.root()
        rows = await store.rows(0, 12)
        assert [r.index for r in rows] == list(range(12))
    finally:
        await engine.dispose()
