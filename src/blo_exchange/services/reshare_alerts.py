"""The stored alert a re-share is about, and the agreements that would cover sharing it on.

Both sides of a re-share read the alert from this node's inbox, verified and opened again (never
from what a request record says), and look for an agreement in force between the origin agency
and the target that covers the alert's border pair, kind and TLP.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blo_exchange.crypto.envelope import OpenedEnvelope
from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.domain.directory import Agreement, Node
from blo_exchange.domain.marking import Handling, Tlp, restricts_resharing
from blo_exchange.domain.policy import applies
from blo_exchange.errors import InvalidEnvelope, NoAgreement, PolicyError
from blo_exchange.services.ports import Directory, Inbox, InboxItem
from blo_exchange.services.reshare_model import AgencyLookup
from blo_exchange.services.signed import SignedMessages

__all__ = ["ReshareAlerts", "StoredAlert"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredAlert:
    """A stored alert this node verified and opened again: its header, recipients and parts."""

    row: InboxItem
    opened: OpenedEnvelope
    recipients: tuple[str, ...]

    @property
    def header(self) -> dict[str, Any]:
        return self.opened.header

    @property
    def restricted(self) -> bool:
        handling = Handling.model_validate(self.header["handling"])
        return restricts_resharing(handling, Tlp(self.header["tlp"]))


class ReshareAlerts:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        agencies: AgencyLookup,
        inbox: Inbox,
        signed: SignedMessages,
    ) -> None:
        self._node = node
        self._kem_keys = kem_keys
        self._directory = directory
        self._agencies = agencies
        self._inbox = inbox
        self._signed = signed

    async def alert(self, alert_id: str) -> StoredAlert | None:
        """The alert in this node's inbox for its agency, verified and opened again."""
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or row.agency_id != self._node.agency_id:
            return None
        try:
            alert = await self._signed.open_stored(row, kem_keys=self._kem_keys)
        except InvalidEnvelope:
            log.warning("stored alert %s no longer verifies", alert_id)
            return None
        return StoredAlert(
            row=row, opened=alert.opened, recipients=tuple(alert.verified.recipients)
        )

    async def covering(
        self, header: Mapping[str, Any], target: str, recipients: tuple[str, ...], at: datetime
    ) -> list[Agreement]:
        """Agreements in force between the origin and ``target`` that cover the alert; raises
        ``PolicyError`` when the target is unknown or already a recipient, ``NoAgreement`` when
        none covers it."""
        if target in recipients:
            raise PolicyError(f"{target} is already a recipient of this alert")
        if not await self._agencies.agency_exists(target):
            raise PolicyError(f"no agency {target} in the directory")
        origin = str(header["origin_agency"])
        covering = [
            agreement
            for agreement in await self._directory.agreements()
            if target in agreement.parties
            and applies(
                agreement,
                origin_agency=origin,
                border_pair=str(header["border_pair"]),
                kind=str(header["kind"]),
                tlp=Tlp(header["tlp"]),
                at=at,
            )
        ]
        if not covering:
            raise NoAgreement(
                f"no sharing agreement in force between {origin} and {target} covers border "
                f"pair {header['border_pair']}, kind {header['kind']} and TLP {header['tlp']}"
            )
        return covering
