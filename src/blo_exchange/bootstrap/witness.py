"""A node's witness of the ledger (``ledger.witness``), run inside every node process.

Its key is an Ed25519 key of its own (``witness.key`` in the node's key folder); its memory is
``witness.state`` beside it. Once a second it looks at the latest checkpoint, and cosigns it if
it extends the one it cosigned before.

Which keys it believes, and how its own is known. With roots pinned (``trusted``), the ledger key
that must have signed a checkpoint is one a ``ledger_key`` statement signed by every agency's
root grants, and the witness key is known to auditors only through a ``key`` statement (owner
kind ``witness``, owner id the node) signed by its agency's root (``agency sign-key``): the
witness writes no row, and says at start when its key is not granted yet. Without pinned roots
(a process that believes its database), both are directory rows, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from blo_exchange.config import Settings, require_key_dir
from blo_exchange.crypto.note import Cosigner, NoteVerifier
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.db.statements import SignedDirectory
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger.checkpoints import load_or_create_ledger_key
from blo_exchange.ledger.witness import Witness, witness_name

__all__ = ["WITNESS_INTERVAL", "WitnessRuntime"]

WITNESS_INTERVAL = 1.0
"""Seconds between looks at the latest checkpoint."""

log = logging.getLogger(__name__)


@dataclass
class WitnessRuntime:
    witness: Witness
    directory: SqlDirectory
    node_id: str
    key_id: str
    trusted: SignedDirectory | None = None
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        store: SqlLedgerStore,
        directory: SqlDirectory,
        trusted: SignedDirectory | None = None,
    ) -> WitnessRuntime:
        key_dir = require_key_dir(settings)
        key = load_or_create_ledger_key(key_dir / "witness.key")
        origin = settings.ledger_origin
        believed: SqlDirectory | SignedDirectory = directory if trusted is None else trusted

        async def log_keys() -> list[NoteVerifier]:
            keys = await believed.verify_keys("ledger", origin, utc_now())
            if not keys:
                believed.invalidate()  # the key may have been registered since
                keys = await believed.verify_keys("ledger", origin, utc_now())
            return [NoteVerifier(origin, k.public) for k in keys.values()]

        witness = Witness(
            origin=origin,
            cosigner=Cosigner.from_signing_key(witness_name(settings.node_id), key),
            store=store,
            log_keys=log_keys,
            clock=utc_now,
            state_path=key_dir / "witness.state",
        )
        return cls(
            witness=witness,
            directory=directory,
            node_id=settings.node_id,
            key_id=key.key_id,
            trusted=trusted,
        )

    async def register_key(self) -> None:
        """Without pinned roots, publish the witness key as a directory row (a no-op when it is
        there already). With them, only say whether a statement of its agency grants it."""
        if self.trusted is not None:
            granted = {public for _, public in await self.trusted.witness_keys()}
            if self.witness.cosigner.public_key_raw not in granted:
                log.warning(
                    "witness key %s of %s is not granted by a statement of its agency's root "
                    "yet: auditors will not count its cosignatures (agency sign-key "
                    "--owner-kind witness)",
                    self.key_id,
                    self.node_id,
                )
            return
        await self.directory.add_key(
            key_id=self.key_id,
            owner_kind="witness",
            owner_id=self.node_id,
            alg="Ed25519",
            public=self.witness.cosigner.public_key_raw,
        )

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self._run(), name="witness")]

    def stop(self) -> None:
        self._stopping.set()

    async def _run(self) -> None:
        try:
            await self.register_key()
        except Exception:
            log.exception("could not register the witness key in the directory")
        while not self._stopping.is_set():
            try:
                await self.witness.observe()
            except Exception:
                log.exception("witness %s failed to look at the latest checkpoint", self.node_id)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), WITNESS_INTERVAL)
