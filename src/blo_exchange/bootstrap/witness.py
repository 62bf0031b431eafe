"""A node's witness of the ledger (``ledger.witness``), run inside every node process.

Its key is an Ed25519 key of its own (``witness.key`` in the node's key folder), registered in
the directory as owner kind ``witness`` and owner id the node (a signed directory statement once
agency root keys exist); its memory is ``witness.state`` beside it. Once a second it looks at the
latest checkpoint, and cosigns it if it extends the one it cosigned before.
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
    _stopping: asyncio.Event = field(default_factory=asyncio.Event)

    @classmethod
    def build(
        cls, settings: Settings, *, store: SqlLedgerStore, directory: SqlDirectory
    ) -> WitnessRuntime:
        key_dir = require_key_dir(settings)
        key = load_or_create_ledger_key(key_dir / "witness.key")
        origin = settings.ledger_origin

        async def log_keys() -> list[NoteVerifier]:
            keys = await directory.verify_keys("ledger", origin, utc_now())
            if not keys:
                directory.invalidate()  # the writer may have registered it since
                keys = await directory.verify_keys("ledger", origin, utc_now())
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
            witness=witness, directory=directory, node_id=settings.node_id, key_id=key.key_id
        )

    async def register_key(self) -> None:
        """Publish the witness key in the directory (a no-op when it is there already)."""
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
