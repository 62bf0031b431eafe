"""Auditors' reads of the ledger — entries, checkpoints, proofs, the export bundle, the sharing
summary — for the JSON API and the pages alike, and the signed record of each read.

Which keys it believes: the ledger key is the directory's (``Directory.verify_keys("ledger",
origin)``); with roots pinned that directory is the signed one, so only a ``ledger_key`` statement
signed by every agency grants it, and a checkpoint signed by a key planted in the database is a
``LedgerIntegrityError``. Witness and node keys are, with ``statements``, the ones agencies'
roots granted; without, the database's rows (a process without pinned roots believes those).

What it is not for: checking a request's bounds against the latest checkpoint (the edges answer
those with their own 422), or verifying a bundle (``ledger.verify``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from blo_exchange.crypto.note import (
    CosignatureVerifier,
    NoteError,
    NoteVerifier,
    open_checkpoint,
)
from blo_exchange.errors import LedgerIntegrityError, NotFound, OutOfRange
from blo_exchange.ledger.answers import VerifiedLedger, count_sharing
from blo_exchange.ledger.audit import LedgerQueryRecorder
from blo_exchange.ledger.ports import (
    EntryFilter,
    LedgerReads,
    SharingCount,
    StatementKeys,
    StoredCheckpoint,
)
from blo_exchange.ledger.verify import build_bundle
from blo_exchange.ledger.witness import witness_name
from blo_exchange.services.ports import Directory

__all__ = ["UNSIGNED_TAIL", "AuditorReads", "checkpoint_json"]

UNSIGNED_TAIL = 1000
"""At most this many stored entries beyond the latest checkpoint go into an export, as such."""


def checkpoint_json(checkpoint: StoredCheckpoint) -> dict[str, Any]:
    return {
        "tree_size": checkpoint.tree_size,
        "root_hash": checkpoint.root_hash.hex(),
        "note": checkpoint.note,
    }


class AuditorReads:
    def __init__(
        self,
        *,
        store: LedgerReads,
        directory: Directory,
        origin: str,
        recorder: LedgerQueryRecorder,
        clock: Callable[[], datetime],
        statements: StatementKeys | None = None,
    ) -> None:
        self.store = store
        self._statements = statements
        self._directory = directory
        self._origin = origin
        self._recorder = recorder
        self._clock = clock
        self.verified = VerifiedLedger(store)

    async def record(self, *, principal_id: str, path: str, query: str) -> None:
        """Record an auditor's read. Raises ``BusError`` when the record was not acknowledged:
        the answer must then not be handed out."""
        await self._recorder.record(principal_id=principal_id, path=path, query=query)

    async def latest(self) -> StoredCheckpoint:
        checkpoint = await self.store.latest_checkpoint()
        if checkpoint is None:
            raise NotFound("no checkpoint has been signed yet")
        return checkpoint

    async def cosigned(self, checkpoints: list[StoredCheckpoint]) -> list[StoredCheckpoint]:
        """The checkpoints as served: each note followed by the witnesses' cosignature lines
        (stored unverified: whoever relies on them verifies them)."""
        lines = await self.store.cosignature_lines([c.tree_size for c in checkpoints])
        return [
            StoredCheckpoint(c.tree_size, c.root_hash, c.note + "".join(lines.get(c.tree_size, [])))
            for c in checkpoints
        ]

    async def latest_cosigned(self) -> StoredCheckpoint:
        """The latest checkpoint with its cosignatures."""
        (checkpoint,) = await self.cosigned([await self.latest()])
        return checkpoint

    async def witnesses(self) -> dict[str, Any]:
        """The witnesses' keys, and the fork evidence they published: for each, the checkpoint
        the witness cosigned and the conflicting one, both signed by the log (check them)."""
        return {
            "witness_keys": await self.witness_keys(),
            "forks": await self.store.fork_evidence(),
        }

    async def witness_keys(self) -> list[str]:
        """The C2SP verifier keys (type 0x04) of the directory's witnesses: granted by their
        agencies' roots where roots are pinned, the database's rows otherwise."""
        source = self.store if self._statements is None else self._statements
        return [
            CosignatureVerifier(witness_name(node), public).verifier_key_string()
            for node, public in await source.witness_keys()
        ]

    async def ledger_key(self, latest: StoredCheckpoint) -> str:
        """The verifier key (from the directory) that signed ``latest``.

        Which key is *trusted* is the verifier's business (``--key``, ``--trust``); this only
        finds the one that matches, so that a first-time verifier has something to pin.
        """
        for attempt in range(2):
            if attempt:
                self._directory.invalidate()  # the writer may have registered it since
            keys = await self._directory.verify_keys("ledger", self._origin, self._clock())
            for key in keys.values():
                verifier = NoteVerifier(self._origin, key.public)
                try:
                    open_checkpoint(latest.note, [verifier], self._origin)
                except NoteError:
                    continue
                return verifier.verifier_key_string()
        raise NotFound(
            "no ledger key in force signed the latest checkpoint"
            + ("" if self._statements is None else " (none granted by every agency's root)")
        )

    async def inclusion_proof(self, index: int, tree_size: int) -> dict[str, Any]:
        """The RFC 9162 audit path of entry ``index`` in the tree of ``tree_size`` entries."""
        latest = await self.latest()
        if tree_size > latest.tree_size:
            raise _beyond("tree_size", tree_size, latest)
        if index >= tree_size:
            raise OutOfRange(f"index {index} is not below tree_size {tree_size}")
        path = await self.store.inclusion_proof(index, tree_size)
        return {"index": index, "tree_size": tree_size, "path": [p.hex() for p in path]}

    async def consistency_proof(self, first: int, second: int) -> dict[str, Any]:
        """The RFC 9162 consistency proof from the tree of ``first`` entries to ``second``."""
        latest = await self.latest()
        if second > latest.tree_size:
            raise _beyond("second", second, latest)
        if first > second:
            raise OutOfRange(f"first {first} is larger than second {second}")
        path = await self.store.consistency_proof(first, second)
        return {"first": first, "second": second, "path": [p.hex() for p in path]}

    async def export(self, *, cosigned: int = 0) -> dict[str, Any]:
        """Everything ``blo-exchange ledger verify`` needs, up to the latest checkpoint, or,
        with ``cosigned`` > 0, the latest one with at least that many stored cosignatures
        (404 if none has)."""
        latest = await self.latest()
        key = await self.ledger_key(latest)
        if cosigned:
            size = await self.store.largest_cosigned(cosigned)
            found = [c for c in await self.store.checkpoints(up_to=size) if c.tree_size == size]
            if size is None or not found:
                raise NotFound(f"no checkpoint has {cosigned} cosignatures yet")
            latest = found[0]
        (latest,) = await self.cosigned([latest])
        keys_from = self.store if self._statements is None else self._statements
        rows = await self.store.rows(0, latest.tree_size)
        tail = await self.store.rows(latest.tree_size, latest.tree_size + UNSIGNED_TAIL)
        return build_bundle(
            origin=self._origin,
            ledger_public_key=key,
            checkpoint=checkpoint_json(latest),
            checkpoints=[
                checkpoint_json(c) for c in await self.cosigned(await self.store.checkpoints())
            ],
            witness_keys=await self.witness_keys(),
            node_keys=await keys_from.node_keys(),
            leaves=[(r.index, r.leaf_input, r.leaf_hash) for r in rows],
            columns={r.index: r.columns for r in rows},
            unsigned=[(r.index, r.leaf_input, r.leaf_hash) for r in tail],
            statements=[] if self._statements is None else await self._statements.statement_texts(),
        )

    async def verified_head(self) -> StoredCheckpoint | None:
        """The latest checkpoint, once its signature verifies with the directory's ledger key
        and the stored entries reproduce its root (``LedgerIntegrityError`` if not); None
        before the first checkpoint."""
        latest = await self.store.latest_checkpoint()
        if latest is None:
            return None
        try:
            await self.ledger_key(latest)
        except NotFound:
            raise LedgerIntegrityError(
                f"checkpoint {latest.tree_size} is signed by no ledger key in force"
                + ("" if self._statements is None else " (granted by every agency's root)")
            ) from None
        await self.verified.catch_up(latest)
        await self.verified.audit_columns()
        return latest

    async def entries(
        self, wanted: EntryFilter, *, after: int, limit: int
    ) -> list[tuple[int, bytes]]:
        """``(index, leaf_input)`` of the entries matching ``wanted`` with index > ``after``,
        up to the latest checkpoint, each checked against the verified bytes before it is
        served."""
        head = await self.verified_head()
        if head is None:
            return []
        rows = await self.store.entry_rows(wanted, after=after, before=head.tree_size, limit=limit)
        for row in rows:
            self.verified.check_served(row, wanted)
        return [(row.index, row.leaf_input) for row in rows]

    async def sharing(
        self, *, since: datetime | None = None, until: datetime | None = None
    ) -> list[SharingCount]:
        """Who shared with whom, counted from the verified ``leaf_input`` of every entry up to
        the latest checkpoint (never from the indexed columns)."""
        if await self.verified_head() is None:
            return []
        return count_sharing(self.verified.facts, since=since, until=until)


def _beyond(what: str, value: int, latest: StoredCheckpoint) -> OutOfRange:
    return OutOfRange(
        f"{what} {value} is beyond the latest checkpoint's tree size {latest.tree_size}"
    )
