"""The ledger writer's own memory of what it appended and signed, kept outside the database.

The writer is trusted for order only, and only for the rows it appended itself. So it does not
believe the database about the tree: it keeps the right edge of the tree it built
(:class:`~blo_exchange.ledger.merkle.CompactRange`, at most 64 hashes) and the last checkpoint it
signed in a file of its own (``ledger.state`` beside ``ledger.key``), written 0600, fsynced and
renamed into place before each append commits and before each checkpoint is stored. It signs
only the root of that range, so:

- a row somebody else inserted (even holding the writer's advisory lock, even at the next
  index) is never covered: the writer's next append or checkpoint finds the ledger larger than
  what it appended and stops, logging CRITICAL with the first foreign index;
- rows deleted behind the triggers (a truncation to regrow a fork) make the ledger smaller than
  what it appended: it stops the same way, and never signs that size again with another root.

A crash between writing the journal and the commit leaves a *pending* batch in the file: on the
next append the rows after the appended size must be exactly that batch (the commit happened)
or absent (it did not). Anything else is a fork or an insertion.

Once stopped, the writer stays stopped (across restarts too: the file remembers) until an
operator resolves it; the messages it did not append wait in JetStream.

File format (JSON)::

    {"format": "blo-ledger-writer-state/1", "origin": ...,
     "signed": {"tree_size", "root_hash" (hex)},
     "appended": {"tree_size", "nodes": [[level, index, hash (hex)], ...]},
     "pending": {"start", "leaf_hashes": [hex, ...]} or null}
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.errors import BloExchangeError
from blo_exchange.ledger import merkle

__all__ = ["JOURNAL_FORMAT", "LedgerForkError", "WriterJournal"]

JOURNAL_FORMAT = "blo-ledger-writer-state/1"

log = logging.getLogger(__name__)


class LedgerForkError(BloExchangeError):
    """The stored ledger is not what this writer appended: signing would fork or cover rows it
    did not append."""


@dataclass(frozen=True, slots=True)
class _Pending:
    start: int
    leaf_hashes: tuple[bytes, ...]


class WriterJournal:
    """What this writer appended (a compact range) and last signed; ``path=None`` keeps it in
    memory only (tests)."""

    def __init__(
        self,
        *,
        origin: str,
        path: Path | None,
        appended: merkle.CompactRange | None = None,
        signed: tuple[int, bytes] | None = None,
        pending: _Pending | None = None,
    ) -> None:
        self.origin = origin
        self.path = path
        self.appended = appended or merkle.CompactRange()
        self.signed_size, self.signed_root = signed or (0, merkle.EMPTY_ROOT)
        self._pending = pending
        self.stopped: str | None = None
        self.lock = asyncio.Lock()
        """Held across an append and its :meth:`committed`, so a checkpoint never sees a row
        committed but not yet counted as the writer's."""

    # --- persistence --------------------------------------------------------------------------

    @classmethod
    def load(cls, path: Path, *, origin: str) -> WriterJournal | None:
        """The journal in ``path``; None when there is none yet. Raises ``LedgerForkError``
        when it is unreadable or for another log (an operator must look)."""
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text("utf-8"))
            if data.get("format") != JOURNAL_FORMAT or data.get("origin") != origin:
                raise ValueError("not a writer state file of this log")
            appended = data["appended"]
            nodes = {(int(lv), int(ix)): bytes.fromhex(h) for lv, ix, h in appended["nodes"]}
            signed = data["signed"]
            pending = data.get("pending")
            return cls(
                origin=origin,
                path=path,
                appended=merkle.CompactRange(int(appended["tree_size"]), nodes),
                signed=(int(signed["tree_size"]), bytes.fromhex(signed["root_hash"])),
                pending=None
                if pending is None
                else _Pending(
                    int(pending["start"]), tuple(bytes.fromhex(h) for h in pending["leaf_hashes"])
                ),
            )
        except (OSError, ValueError, KeyError, TypeError, merkle.MerkleError) as exc:
            raise LedgerForkError(f"the writer's state file {path} is unusable: {exc}") from None

    def to_json(self) -> dict[str, Any]:
        return {
            "format": JOURNAL_FORMAT,
            "origin": self.origin,
            "signed": {"tree_size": self.signed_size, "root_hash": self.signed_root.hex()},
            "appended": {
                "tree_size": self.appended.size,
                "nodes": [[lv, ix, h.hex()] for (lv, ix), h in sorted(self.appended.nodes.items())],
            },
            "pending": None
            if self._pending is None
            else {
                "start": self._pending.start,
                "leaf_hashes": [h.hex() for h in self._pending.leaf_hashes],
            },
        }

    def save(self) -> None:
        if self.path is not None:
            write_private_file(self.path, (json.dumps(self.to_json()) + "\n").encode("utf-8"))

    # --- appending ----------------------------------------------------------------------------

    @property
    def size(self) -> int:
        return self.appended.size

    @property
    def pending_count(self) -> int:
        return 0 if self._pending is None else len(self._pending.leaf_hashes)

    def frontier(self) -> Mapping[merkle.Node, bytes]:
        """The nodes a new append builds on: the writer's own, never the database's."""
        return self.appended.nodes

    def reconcile(self, stored_size: int, stored_hashes: Sequence[bytes]) -> None:
        """Check the ledger's size (under the append lock) against what this writer appended.

        ``stored_hashes`` are the stored leaf hashes from :attr:`size` on (at most
        ``pending_count + 1`` of them). A pending batch found committed becomes the writer's;
        found absent, it is dropped. Raises :class:`LedgerForkError` otherwise.
        """
        self._refuse_if_stopped()
        own = self.appended.size
        if stored_size < own:
            self.stop(
                f"the ledger has {stored_size} entries, but this writer appended {own}: "
                f"entries from index {stored_size} were removed"
            )
        pending = self._pending
        if stored_size == own:
            if pending is not None:
                self._pending = None  # its commit never happened
            return
        if pending is not None and pending.start == own:
            n = len(pending.leaf_hashes)
            if stored_size == own + n and tuple(stored_hashes[:n]) == pending.leaf_hashes:
                self.appended.extend(list(pending.leaf_hashes))
                self._pending = None
                return
            for offset, h in enumerate(stored_hashes):
                if offset >= n or h != pending.leaf_hashes[offset]:
                    self.stop(f"entry {own + offset} was not appended by this writer")
        self.stop(f"entry {own} was not appended by this writer")

    def reconcile_size(self, stored_size: int) -> None:
        """Between appends (under :attr:`lock`): the ledger holds what this writer appended."""
        self._refuse_if_stopped()
        if stored_size < self.appended.size:
            self.stop(
                f"the ledger has {stored_size} entries, but this writer appended "
                f"{self.appended.size}: entries from index {stored_size} were removed"
            )
        if stored_size > self.appended.size and self._pending is None:
            self.stop(f"entry {self.appended.size} was not appended by this writer")

    def prepare(self, start: int, leaf_hashes: Sequence[bytes]) -> None:
        """Record the batch about to be committed at ``start``, durably, before the commit."""
        self._refuse_if_stopped()
        if start != self.appended.size:
            self.stop(f"entry {self.appended.size} was not appended by this writer")
        self._pending = _Pending(start, tuple(leaf_hashes))
        self.save()

    def committed(self) -> None:
        """The prepared batch committed: it is now the writer's (written with the next save)."""
        if self._pending is not None:
            self.appended.extend(list(self._pending.leaf_hashes))
            self._pending = None

    # --- signing ------------------------------------------------------------------------------

    def record_signed(self, size: int, root: bytes) -> None:
        """Remember a checkpoint about to be stored; it must extend the one signed before."""
        self._refuse_if_stopped()
        if size < self.signed_size or (size == self.signed_size and root != self.signed_root):
            self.stop(
                f"asked to sign size {size}, inconsistent with the signed size {self.signed_size}"
            )
        if size > self.appended.size:
            self.stop(f"asked to sign size {size}, beyond the {self.appended.size} appended")
        self.signed_size, self.signed_root = size, root
        self.save()

    def stop(self, why: str) -> NoReturn:
        if self.stopped is None:
            log.critical("LEDGER FORK OR TAMPERING: the ledger writer stops: %s", why)
        self.stopped = self.stopped or why
        raise LedgerForkError(why)

    def _refuse_if_stopped(self) -> None:
        if self.stopped is not None:
            raise LedgerForkError(f"the ledger writer stopped: {self.stopped}")
