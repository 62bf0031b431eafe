"""Believing a signed message from a node: look up the signer's keys, verify, and open.

Every receiver — delivery, the feed, re-share, the ledger writer — takes the same steps, here and
nowhere else, so a check added to them holds at every receiver:

(1) the signer's keys are the directory's unrevoked keys of the node the message names, at the
    time given (the message's arrival for live traffic, its ``created_at`` for stored alerts);
(2) the signature verifies with one of them (``crypto`` checks structure, signature, part hashes
    and the subject's border pair and kind);
(3) the signer was entitled to say it (``domain.authority``), from the directory's record of the
    signing node and its agreements at the same time, never from the message: for an envelope,
    its origin agency, pair, crossing point, cited agreements, recipients and who gets the
    nominal block; for a record, its agency and pair. A failure raises ``NotEntitled``, an
    ``InvalidEnvelope`` with a ``reason``, so every receiver records it as a rejection;
(4) for an envelope, the recipient agency's entry is present and, where asked, opens.

What is not checked here: whether the directory's facts are genuine (the directory adapter's
job), and what a record's other fields (alert id, envelope hash) refer to.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blo_exchange.crypto.envelope import OpenedEnvelope, UnverifiedEnvelope, VerifiedEnvelope
from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.domain.authority import check_alert_authority, check_record_authority
from blo_exchange.domain.directory import Node
from blo_exchange.errors import DirectoryError, NotEntitled
from blo_exchange.services.ports import Directory, InboxItem

__all__ = ["OpenedAlert", "SignedMessages"]


@dataclass(frozen=True)
class OpenedAlert:
    verified: VerifiedEnvelope
    opened: OpenedEnvelope


class SignedMessages:
    """Verifies envelopes and signed records against the directory; opens envelopes."""

    def __init__(self, directory: Directory, *, clock: Callable[[], datetime]) -> None:
        self._directory = directory
        self._clock = clock

    async def envelope(
        self,
        envelope: UnverifiedEnvelope,
        *,
        border_pair: str,
        kind: str,
        recipient_agency: str | None,
        at: datetime | None = None,
    ) -> VerifiedEnvelope:
        """Steps (1)-(3), and the recipient's presence when ``recipient_agency`` is given.

        ``recipient_agency=None`` is for the ledger writer, which is no recipient: it checks the
        signature, the subject and the signer's authority. Raises ``InvalidEnvelope``.
        """
        at = self._clock() if at is None else at
        # (1) The named node's keys valid at ``at``.
        keys = await self._directory.verify_keys("node", envelope.origin_node, at)
        # (2) The signature, part hashes and subject (and the recipient's presence).
        if recipient_agency is None:
            verified = envelope.verify_signature_only(
                keys, subject_border_pair=border_pair, subject_kind=kind
            )
        else:
            verified = envelope.verify(
                keys,
                subject_border_pair=border_pair,
                subject_kind=kind,
                recipient_agency=recipient_agency,
            )
        # (3) The signing node's authority, from the directory at the same moment.
        check_alert_authority(
            verified.header,
            {agency: verified.recipient_parts(agency) for agency in verified.recipients},
            origin=await self._signer(envelope.origin_node),
            agreements=await self._directory.agreements(),
            at=at,
            nominal_parts=verified.nominal_parts,
        )
        return verified

    async def open(
        self,
        envelope: UnverifiedEnvelope,
        *,
        border_pair: str,
        kind: str,
        agency: str,
        kem_keys: Mapping[str, KemPrivateKey],
        at: datetime | None = None,
    ) -> OpenedAlert:
        """Steps (1)-(4): verified for ``agency`` and opened with its keys."""
        verified = await self.envelope(
            envelope, border_pair=border_pair, kind=kind, recipient_agency=agency, at=at
        )
        return OpenedAlert(verified=verified, opened=verified.open(agency, kem_keys))

    async def open_stored(
        self, row: InboxItem, *, kem_keys: Mapping[str, KemPrivateKey]
    ) -> OpenedAlert:
        """An alert from the inbox, verified again with the keys valid when it was created."""
        return await self.open(
            UnverifiedEnvelope.parse(row.envelope),
            border_pair=row.border_pair,
            kind=row.kind,
            agency=row.agency_id,
            kem_keys=kem_keys,
            at=row.created_at,
        )

    async def record(self, record: UnverifiedReceipt) -> dict[str, Any]:
        """A receipt or record's body, once its signature verifies with its node's keys (1)-(2)
        and its agency and pair are its node's (3)."""
        keys = await self._directory.verify_keys("node", record.node, self._clock())
        body = record.verify(keys).body
        check_record_authority(body, signer=await self._signer(record.node))
        return body

    async def _signer(self, node_id: str) -> Node:
        try:
            return await self._directory.node(node_id)
        except DirectoryError:
            raise NotEntitled("unknown_node") from None
