"""Cutting signed checkpoints of the ledger: C2SP tlog-checkpoint notes over the stored tree.

What this module is for: the ledger writer's key (loaded, or generated on first start), and
:class:`Checkpointer`, which signs the current tree head once it has checked that the tree still
extends the latest checkpoint it signed. A signed checkpoint is stored in ``ledger_checkpoints``
and published on ``blo.v1.ledger.checkpoints``, so copies exist outside Postgres.

What it is not for: verifying a ledger from outside (``ledger.verify``), serving proofs
(``db.ledger_store``), or note formats (``crypto.note``).
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import NoReturn

from blo_exchange.crypto.keys import SigningKey, load_signing_key, save_private_key
from blo_exchange.crypto.note import NoteError, NoteSigner, format_checkpoint, open_checkpoint
from blo_exchange.errors import BusError
from blo_exchange.ledger import merkle
from blo_exchange.ledger.journal import LedgerForkError, WriterJournal
from blo_exchange.ledger.ports import CheckpointStore, StoredCheckpoint
from blo_exchange.services.ports import Publisher

__all__ = [
    "CHECKPOINT_SUBJECT",
    "Checkpointer",
    "LedgerForkError",
    "ledger_key_path",
    "load_or_create_ledger_key",
    "note_signer",
]

CHECKPOINT_SUBJECT = "blo.v1.ledger.checkpoints"

log = logging.getLogger(__name__)


def ledger_key_path(key_file: Path | None, key_dir: Path) -> Path:
    return key_file if key_file is not None else key_dir / "ledger.key"


def load_or_create_ledger_key(path: Path) -> SigningKey:
    """The ledger's Ed25519 key at ``path``; generated (0600) when the file does not exist."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        save_private_key(path, SigningKey.generate())
        log.info("generated a new ledger key in %s", path)
    return load_signing_key(path)


def note_signer(origin: str, key: SigningKey) -> NoteSigner:
    """Signs notes as key name ``origin``, the log's origin line."""
    return NoteSigner.from_signing_key(origin, key)


class Checkpointer:
    """Signs, stores and publishes checkpoints of one ledger. One per writer process."""

    def __init__(
        self,
        *,
        store: CheckpointStore,
        signer: NoteSigner,
        origin: str,
        publisher: Publisher | None,
        journal: WriterJournal | None = None,
        journal_path: Path | None = None,
    ) -> None:
        self._store = store
        self._signer = signer
        self._origin = origin
        self._publisher = publisher
        self._journal = journal
        self._journal_path = journal_path
        self._adopting = asyncio.Lock()
        self._lock = asyncio.Lock()
        self._published = -1

    async def cut(self) -> StoredCheckpoint | None:
        """Sign the current tree if it grew since the latest checkpoint; None if it did not.

        Raises :class:`LedgerForkError` (after logging it at CRITICAL) when the stored tree
        does not extend the latest checkpoint: a fork is never signed.
        """
        async with self._lock:
            journal = await self.journal()
            if journal is not None:
                checkpoint = await self._cut_own(journal)
            else:
                checkpoint = await self._cut()
            await self._publish(checkpoint)
            return checkpoint

    async def _cut_own(self, journal: WriterJournal) -> StoredCheckpoint | None:
        """Sign what this writer appended, and nothing else (``ledger.journal``)."""
        # (1) The ledger holds exactly what the writer appended (no append in flight).
        async with journal.lock:
            journal.reconcile_size(await self._store.size())
            size, root = journal.size, journal.appended.root()
        # (2) The stored nodes (from which proofs are served) give the writer's own root, now
        # and at the size it signed last.
        for at, expected in ((journal.signed_size, journal.signed_root), (size, root)):
            try:
                stored_root = await self._store.root_at(at)
            except (merkle.MerkleError, KeyError):
                stored_root = b""
            if stored_root != expected:
                journal.stop(
                    f"the stored tree nodes no longer give the root of the {at} entries this "
                    "writer appended"
                )
        # (3) Nothing signed beyond it, and something new (or a signed checkpoint gone missing:
        # Ed25519 signatures are deterministic, so signing that size again gives the same note).
        latest = await self._store.latest_checkpoint()
        if latest is not None and latest.tree_size > size:
            journal.stop(
                f"the database holds checkpoint {latest.tree_size}, beyond the {size} entries "
                "this writer appended"
            )
        if size == 0 or (latest is not None and latest.tree_size == size):
            if latest is not None and latest.root_hash != root:
                journal.stop(f"the stored checkpoint {size} does not have this writer's root")
            return None
        # (4) Remember it (fsynced) before anyone can see it; then sign, store, log.
        journal.record_signed(size, root)
        note = self._signer.sign(format_checkpoint(self._origin, size, root))
        checkpoint = StoredCheckpoint(size, root, note)
        if not await self._store.add_checkpoint(checkpoint):
            return None
        log.info("checkpoint %d %s", size, root.hex())
        return checkpoint

    async def _cut(self) -> StoredCheckpoint | None:
        # (1) The tree's size now; nodes for every size up to it exist and never change.
        size = await self._store.size()
        latest = await self._store.latest_checkpoint()
        if latest is not None and size < latest.tree_size:
            self._refuse(f"the ledger has {size} entries, fewer than checkpoint {latest.tree_size}")
        if size == 0 or (latest is not None and size == latest.tree_size):
            return None
        root = await self._store.root_at(size)
        if latest is not None:
            # (2) The stored nodes still give the latest checkpoint's root at its size…
            if await self._store.root_at(latest.tree_size) != latest.root_hash:
                self._refuse(f"the stored tree no longer has checkpoint {latest.tree_size}'s root")
            # (3) …and a consistency proof from it to the new root verifies. Not checked here:
            # that each leaf_input still hashes to its stored leaf (the verifier does that).
            proof = await self._store.consistency_proof(latest.tree_size, size)
            try:
                merkle.verify_consistency(latest.tree_size, size, latest.root_hash, root, proof)
            except merkle.ProofError as exc:
                self._refuse(f"checkpoint {latest.tree_size} -> {size}: {exc}")
        # (4) Sign, store (a concurrent writer may have stored this size first: keep theirs).
        note = self._signer.sign(format_checkpoint(self._origin, size, root))
        checkpoint = StoredCheckpoint(size, root, note)
        if not await self._store.add_checkpoint(checkpoint):
            return None
        log.info("checkpoint %d %s", size, root.hex())
        return checkpoint

    async def _publish(self, checkpoint: StoredCheckpoint | None) -> None:
        if self._publisher is None:
            return
        if checkpoint is None:
            # Retry one whose publish failed; msg_id makes a repeat a no-op on the stream.
            latest = await self._store.latest_checkpoint()
            if latest is None or latest.tree_size <= self._published:
                return
            checkpoint = latest
        try:
            await self._publisher.publish(
                CHECKPOINT_SUBJECT,
                checkpoint.note.encode("utf-8"),
                msg_id=f"checkpoint:{checkpoint.tree_size}",
            )
        except BusError as exc:
            log.warning("checkpoint %d not published yet: %s", checkpoint.tree_size, exc)
            return
        self._published = checkpoint.tree_size

    async def journal(self) -> WriterJournal | None:
        """The writer's journal (loaded or adopted on first use when a path was given)."""
        async with self._adopting:
            if self._journal is None and self._journal_path is not None:
                self._journal = await self.adopt(self._journal_path)
            return self._journal

    async def adopt(self, journal_path: Path | None) -> WriterJournal:
        """The journal in ``journal_path``, or, when there is none yet, one adopted from the
        database: empty for an empty ledger, else the latest stored checkpoint *this key*
        signed, with the stored nodes that give its root (rows after it are then refused at the
        first append or checkpoint: this writer cannot vouch for them)."""
        if journal_path is not None:
            found = WriterJournal.load(journal_path, origin=self._origin)
            if found is not None:
                return found
        journal = WriterJournal(origin=self._origin, path=journal_path)
        latest = await self._store.latest_checkpoint()
        if latest is not None:
            try:
                open_checkpoint(latest.note, [self._signer.verifier()], self._origin)
            except NoteError:
                journal.stop(f"checkpoint {latest.tree_size} was not signed by this writer's key")
            nodes = await self._store.nodes(merkle.root_nodes(latest.tree_size))
            adopted = merkle.CompactRange(latest.tree_size, nodes)
            if adopted.root() != latest.root_hash:
                journal.stop(f"the stored nodes do not give checkpoint {latest.tree_size}'s root")
            journal = WriterJournal(
                origin=self._origin,
                path=journal_path,
                appended=adopted,
                signed=(latest.tree_size, latest.root_hash),
            )
            log.warning(
                "no writer state file: adopted checkpoint %d, signed by this key", latest.tree_size
            )
        journal.save()
        self._journal = journal
        return journal

    def _refuse(self, why: str) -> NoReturn:
        log.critical("LEDGER FORK OR TAMPERING: refusing to sign a checkpoint: %s", why)
        raise LedgerForkError(why)
