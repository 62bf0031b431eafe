"""Sealing an alert this node originates and publishing it: one way for every path that sends.

Ingest (an officer's alert) and re-share execution (an approved re-share) both (1) look up each
recipient agency's current HPKE key — a missing key refuses the alert, it is never sent to fewer
agencies than its agreements name; (2) build the header docs/contracts/envelope.md fixes; (3) seal
and sign; (4) publish with the alert id as ``Nats-Msg-Id`` and wait for the stream's ack; (5) keep
the sealed bytes in the node's own inbox under the stream sequence the ack gave. What each path
adds (idempotency, re-share records) stays with it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any

from blo_exchange.crypto.envelope import RecipientKey, envelope_sha256, seal, seal_alert
from blo_exchange.crypto.files import FilePart, SealedAlert
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, SigningKey
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import format_time, parse_time
from blo_exchange.domain.subjects import alert_subject
from blo_exchange.errors import PolicyError
from blo_exchange.services.ports import Ack, Directory, InboxItem, Publisher

__all__ = ["AlertSealer"]


class AlertSealer:
    def __init__(
        self,
        *,
        node: Node,
        signer: SigningKey,
        suite: HpkeSuite,
        directory: Directory,
        publisher: Publisher,
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._node = node
        self._signer = signer
        self._suite = suite
        self._directory = directory
        self._publisher = publisher
        self._rng = rng

    @property
    def suite(self) -> HpkeSuite:
        return self._suite

    async def keys_for(self, agencies: Iterable[str]) -> dict[str, KemPublicKey]:
        """(1) Each agency's current key of this node's suite; ``PolicyError`` if one has none."""
        keys: dict[str, KemPublicKey] = {}
        for agency in agencies:
            key = await self._directory.current_kem_key(agency, self._suite)
            if key is None:
                raise PolicyError(f"agency {agency} has no {self._suite} key registered")
            keys[agency] = key
        return keys

    def header(
        self,
        *,
        alert_id: str,
        kind: str,
        border_pair: str,
        crossing_point: str,
        created_at: datetime,
        tlp: str,
        handling: Mapping[str, Any],
        grading: Mapping[str, Any] | None,
        agreement_ids: Iterable[str],
        supersedes: str | None,
    ) -> dict[str, Any]:
        """(2) The signed header of an alert from this node, field for field as
        docs/contracts/envelope.md."""
        return {
            "alert_id": alert_id,
            "kind": kind,
            "border_pair": border_pair,
            "crossing_point": crossing_point,
            "origin_node": self._node.id,
            "origin_agency": self._node.agency_id,
            "created_at": format_time(created_at),
            "tlp": tlp,
            "handling": dict(handling),
            "grading": None if grading is None else dict(grading),
            "agreement_ids": list(agreement_ids),
            "supersedes": supersedes,
            "suite": self._suite.value,
        }

    def seal(
        self, header: Mapping[str, Any], parts: Mapping[str, bytes], sealed_to: list[RecipientKey]
    ) -> bytes:
        """(3) The signed envelope."""
        return seal(dict(header), dict(parts), sealed_to, self._signer, rng=self._rng)

    def seal_alert(
        self,
        header: Mapping[str, Any],
        parts: Mapping[str, bytes],
        sealed_to: list[RecipientKey],
        files: list[FilePart],
    ) -> SealedAlert:
        """(3) with attachments: the envelope and its files' ciphertexts."""
        return seal_alert(
            dict(header), dict(parts), sealed_to, self._signer, files=files, rng=self._rng
        )

    async def publish(self, header: Mapping[str, Any], raw: bytes, *, bulk: bool = False) -> Ack:
        """(4) On the alert's subject (of the bulk lane with ``bulk``), deduplicated by its id;
        returns once the stream has it."""
        subject = alert_subject(str(header["border_pair"]), str(header["kind"]), bulk=bulk)
        return await self._publisher.publish(subject, raw, msg_id=str(header["alert_id"]))

    def own_copy(self, header: Mapping[str, Any], raw: bytes, ack: Ack) -> InboxItem:
        """(5) The inbox row of an alert this node sealed, as its own agency's copy."""
        return InboxItem(
            node_id=self._node.id,
            alert_id=str(header["alert_id"]),
            agency_id=self._node.agency_id,
            origin_agency=self._node.agency_id,
            origin_node=self._node.id,
            border_pair=str(header["border_pair"]),
            kind=str(header["kind"]),
            tlp=str(header["tlp"]),
            created_at=parse_time(str(header["created_at"])),
            stream_seq=ack.seq,
            envelope=raw,
            envelope_sha256=envelope_sha256(raw),
        )
