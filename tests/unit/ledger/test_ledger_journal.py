"""The writer's journal: what it appended and signed, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from blo_exchange.ledger import merkle
from blo_exchange.ledger.journal import LedgerForkError, WriterJournal

ORIGIN = "blo-exchange.example/ledger"


def hashes(*names: bytes) -> list[bytes]:
    return [merkle.leaf_hash(n) for n in names]


def test_a_batch_journaled_before_a_crash_is_adopted_if_committed(tmp_path: Path) -> None:
    path = tmp_path / "ledger.state"
    journal = WriterJournal(origin=ORIGIN, path=path)
    journal.prepare(0, hashes(b"a", b"b"))
    journal.committed()
    journal.prepare(2, hashes(b"c"))  # then the process dies, commit or not unknown
    again = WriterJournal.load(path, origin=ORIGIN)
    assert again is not None
    assert again.size == 2
    again.reconcile(3, hashes(b"c"))  # it committed
    assert again.size == 3
    tree = merkle.MemoryTree()
    tree.extend([b"a", b"b", b"c"])
    assert again.appended.root() == tree.root()

    lost = WriterJournal.load(path, origin=ORIGIN)
    assert lost is not None
    lost.reconcile(2, [])  # it did not
    assert lost.size == 2
    assert lost.pending_count == 0


def test_rows_it_did_not_append_stop_it_for_good(tmp_path: Path) -> None:
    journal = WriterJournal(origin=ORIGIN, path=None)
    journal.prepare(0, hashes(b"a"))
    journal.committed()
    with pytest.raises(LedgerForkError, match="entry 1 was not appended by this writer"):
        journal.reconcile(2, hashes(b"forged"))
    with pytest.raises(LedgerForkError, match="stopped"):
        journal.prepare(1, hashes(b"b"))

    other = WriterJournal(origin=ORIGIN, path=None)
    other.prepare(0, hashes(b"a", b"b"))
    with pytest.raises(LedgerForkError, match="entry 1 was not appended"):
        other.reconcile(2, hashes(b"a", b"forged"))

    shrunk = WriterJournal(origin=ORIGIN, path=None)
    shrunk.prepare(0, hashes(b"a", b"b"))
    shrunk.committed()
    with pytest.raises(LedgerForkError, match="entries from index 1 were removed"):
        shrunk.reconcile_size(1)


def test_it_never_signs_a_size_inconsistent_with_what_it_signed(tmp_path: Path) -> None:
    journal = WriterJournal(origin=ORIGIN, path=tmp_path / "s")
    journal.prepare(0, hashes(b"a", b"b"))
    journal.committed()
    journal.record_signed(2, journal.appended.root())
    with pytest.raises(LedgerForkError):
        journal.record_signed(2, b"\x00" * 32)
    loaded = WriterJournal.load(tmp_path / "s", origin=ORIGIN)
    assert loaded is not None
    assert (loaded.signed_size, loaded.signed_root) == (2, journal.appended.root())
    with pytest.raises(LedgerForkError, match="unusable"):
        WriterJournal.load(tmp_path / "s", origin="another/log")


def test_a_batch_whose_commit_outcome_is_unknown_is_resolved_by_the_next_append() -> None:
    journal = WriterJournal(origin=ORIGIN, path=None)
    journal.prepare(0, hashes(b"a"))  # then COMMIT fails on the client side: outcome unknown
    assert journal.pending_count == 1
    journal.reconcile_size(1)  # a checkpoint meanwhile does not take the row for a forgery
    journal.reconcile(1, hashes(b"a"))  # it had committed
    assert (journal.size, journal.pending_count) == (1, 0)
    journal.prepare(1, hashes(b"b"))
    journal.reconcile(1, [])  # this one had not
    assert (journal.size, journal.pending_count) == (1, 0)
