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
from blo_exchange.crypto.note import NoteSigner, format_checkpoint
from blo_exchange.errors import BloExchangeError, BusError
from blo_exchange.ledger import merkle
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


class LedgerForkError(BloExchangeError):
    """The stored tree no longer extends the latest signed checkpoint: signing would fork."""


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
    ) -> None:
        self._store = store
        self._signer = signer
        self._origin = origin
        self._publisher = publisher
        self._lock = asyncio.Lock()
        self._published = -1

    async def cut(self) -> StoredCheckpoint | None:
        """Sign the current tree if it grew since the latest checkpoint; None if it did not.

        Raises :class:`LedgerForkError` (after logging it at CRITICAL) when the stored tree
        does not extend the latest checkpoint: a fork is never signed.
        """
        async with self._lock:
            checkpoint = await self._cut()
            await self._publish(checkpoint)
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

    def _refuse(self, why: str) -> NoReturn:
        log.critical("LEDGER FORK OR TAMPERING: refusing to sign a checkpoint: %s", why)
        raise LedgerForkError(why)
