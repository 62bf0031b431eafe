"""A witness of the ledger: every agency's node checks each new checkpoint and cosigns it.

The operator of the writer (or of Postgres) could otherwise show auditors of different states
different histories: one log to one, a truncated or rewritten one to another. A witness
remembers, in a state file of its own (fsynced, outside the database), the largest checkpoint
it cosigned. For each new checkpoint the log signed it:

(1) the note verifies with a ledger key in force for this log's origin (else it is ignored);
(2) a checkpoint of the size it cosigned with another root is a fork;
(3) a larger one must come with a consistency proof from the one it cosigned that verifies
    (the proof is read from the database, and checked, so the database is not trusted);
(4) then it adds its C2SP tlog-cosignature (timestamped Ed25519, ``cosignature/v1``) and
    remembers the checkpoint, before the cosignature is stored for the API to serve.

A witness that sees a fork (2) or an inconsistent checkpoint (3) publishes the evidence — the
checkpoint it cosigned and the conflicting one, both signed by the log — logs CRITICAL, and
refuses to cosign from then on (across restarts: the state file keeps the evidence).

Not checked here: the entries themselves (``ledger verify`` does, from an export), or whether
the ledger key is the right one: ``log_keys`` gives the keys in force (with pinned roots, only
those a ``ledger_key`` statement signed by every agency grants: ``bootstrap.witness``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from blo_exchange.crypto.note import Cosigner, NoteError, NoteVerifier, open_checkpoint
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.errors import BloExchangeError
from blo_exchange.ledger import merkle
from blo_exchange.ledger.ports import StoredCheckpoint

__all__ = ["WITNESS_STATE_FORMAT", "Witness", "WitnessStore", "witness_name"]

WITNESS_STATE_FORMAT = "blo-ledger-witness-state/1"

log = logging.getLogger(__name__)


def witness_name(node_id: str) -> str:
    """A node's cosigner key name (the C2SP note key name of its cosignatures)."""
    return f"{node_id}/witness"


class WitnessStore(Protocol):
    async def latest_checkpoint(self) -> StoredCheckpoint | None: ...
    async def consistency_proof(self, first: int, second: int) -> list[bytes]: ...
    async def add_cosignature(self, tree_size: int, witness: str, line: str) -> None: ...
    async def add_fork_evidence(
        self, witness: str, reason: str, cosigned_note: str, conflicting_note: str
    ) -> None: ...


@dataclass
class _Seen:
    tree_size: int
    root_hash: bytes
    note: str


class Witness:
    def __init__(
        self,
        *,
        origin: str,
        cosigner: Cosigner,
        store: WitnessStore,
        log_keys: Callable[[], Awaitable[Sequence[NoteVerifier]]],
        clock: Callable[[], datetime],
        state_path: Path | None,
    ) -> None:
        self.origin = origin
        self.cosigner = cosigner
        self._store = store
        self._log_keys = log_keys
        self._clock = clock
        self._path = state_path
        self.cosigned: _Seen | None = None
        self.fork: dict[str, Any] | None = None
        self._load()

    @property
    def name(self) -> str:
        return self.cosigner.name

    async def observe(self) -> str | None:
        """Look at the latest checkpoint; the cosignature line added, if any."""
        latest = await self._store.latest_checkpoint()
        if latest is None or self.fork is not None:
            return None
        # (1) Signed by the log.
        try:
            checkpoint = open_checkpoint(latest.note, list(await self._log_keys()), self.origin)
        except NoteError as exc:
            log.warning("witness %s: checkpoint %d ignored: %s", self.name, latest.tree_size, exc)
            return None
        last = self.cosigned
        if last is not None:
            # (2) The same size with another root: a fork.
            if checkpoint.size == last.tree_size:
                if checkpoint.root_hash != last.root_hash:
                    await self._forked(f"two checkpoints of size {checkpoint.size}", latest.note)
                return None
            if checkpoint.size < last.tree_size:
                return None  # an older one; nothing new to cosign
            # (3) Consistent with the one cosigned before.
            try:
                proof = await self._store.consistency_proof(last.tree_size, checkpoint.size)
                merkle.verify_consistency(
                    last.tree_size, checkpoint.size, last.root_hash, checkpoint.root_hash, proof
                )
            except (merkle.MerkleError, KeyError, BloExchangeError) as exc:
                await self._forked(
                    f"checkpoint {checkpoint.size} is not proven consistent with cosigned "
                    f"checkpoint {last.tree_size} ({exc})",
                    latest.note,
                )
                return None
        # (4) Cosign, remember (fsynced), then store for the API.
        line = self.cosigner.cosign(checkpoint.text(), int(self._clock().timestamp()))
        self.cosigned = _Seen(checkpoint.size, checkpoint.root_hash, latest.note)
        self._save()
        await self._store.add_cosignature(checkpoint.size, self.name, line)
        return line

    async def _forked(self, reason: str, conflicting: str) -> None:
        assert self.cosigned is not None
        self.fork = {
            "reason": reason,
            "cosigned_note": self.cosigned.note,
            "conflicting_note": conflicting,
        }
        self._save()
        log.critical(
            "LEDGER FORK: witness %s refuses to cosign: %s; evidence: both signed checkpoints",
            self.name,
            reason,
        )
        await self._store.add_fork_evidence(self.name, reason, self.cosigned.note, conflicting)

    # --- the state file -----------------------------------------------------------------------

    def _load(self) -> None:
        if self._path is None or not self._path.exists():
            return
        data = json.loads(self._path.read_text("utf-8"))
        if data.get("format") != WITNESS_STATE_FORMAT or data.get("origin") != self.origin:
            raise BloExchangeError(f"{self._path} is not this log's witness state")
        seen = data.get("cosigned")
        if seen is not None:
            self.cosigned = _Seen(
                int(seen["tree_size"]), bytes.fromhex(seen["root_hash"]), str(seen["note"])
            )
        self.fork = data.get("fork")

    def _save(self) -> None:
        if self._path is None:
            return
        seen = self.cosigned
        data = {
            "format": WITNESS_STATE_FORMAT,
            "origin": self.origin,
            "witness": self.name,
            "cosigned": None
            if seen is None
            else {
                "tree_size": seen.tree_size,
                "root_hash": seen.root_hash.hex(),
                "note": seen.note,
            },
            "fork": self.fork,
        }
        write_private_file(self._path, (json.dumps(data, indent=1) + "\n").encode("utf-8"))
