"""A recipient's nominal files under the personal-data lifecycle (docs/retention.md, "Nominal
files"): their ciphertexts are kept sealed under the data key of the alert's retention vault row,
so they open only while the epoch key of the day the nominal block expires exists.

``services.attachments`` calls :meth:`NominalFiles.seal` before storing a fetched nominal file
and :meth:`NominalFiles.open` when serving it. An alert without a *recipient* vault row here (an
alert of this node's own agency, or one stored before retention existed) is not under this
node's retention: its files pass as they are.

Not here: the cards of nominal files (``services.retention`` splits them into the vault with the
block), deleting the rows at erasure (``AttachmentService.nominal_erased``).
"""

from __future__ import annotations

from collections.abc import Callable

from blo_exchange.crypto.retention import SealedNominal, open_nominal_file, seal_nominal_file
from blo_exchange.domain.directory import Node
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.services.retention import EpochKeyStore, RetentionStore

__all__ = ["NominalFiles"]


class NominalFiles:
    def __init__(self, *, node: Node, store: RetentionStore, keys: EpochKeyStore) -> None:
        self._node = node
        self._store = store
        self._keys = keys

    async def seal(self, alert_id: str, part: str, ciphertext: bytes) -> bytes | None:
        """What to store for a nominal file's fetched ciphertext; None when its retention
        ended here (or it arrived after): then nothing is stored."""
        return await self._vaulted(
            alert_id,
            ciphertext,
            lambda sealed, key: seal_nominal_file(
                sealed, key, alert_id=alert_id, part=part, data=ciphertext
            ),
        )

    async def open(self, alert_id: str, part: str, stored: bytes) -> bytes | None:
        """The ciphertext the envelope names, from what :meth:`seal` returned; None once the
        retention ended (the epoch key is destroyed) or if the stored bytes do not open."""
        return await self._vaulted(
            alert_id,
            stored,
            lambda sealed, key: open_nominal_file(
                sealed, key, alert_id=alert_id, part=part, stored=stored
            ),
        )

    async def _vaulted(
        self,
        alert_id: str,
        data: bytes,
        through: Callable[[SealedNominal, bytes | None], bytes],
    ) -> bytes | None:
        """``data`` through the alert's vault row: as it is without a recipient row here, None
        once the row is erased or its epoch key destroyed."""
        row = await self._store.get(self._node.id, alert_id)
        if row is None or row.role != "recipient":
            return data
        if row.sealed is None:
            return None
        try:
            return through(row.sealed, self._keys.get(row.sealed.day, create=False))
        except InvalidEnvelope:
            return None
