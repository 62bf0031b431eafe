"""The exact byte form of a ledger entry [contract, DESIGN §5], and how events map to entries.

``leaf_input`` is RFC 8785 canonical JSON of the entry's fields; its Merkle leaf hash is
SHA-256(0x00 || leaf_input). Every field an auditor filters on is in those bytes, so an offline
verifier can recompute everything from the export alone. Changing this module changes the
contract: every earlier checkpoint would stop verifying.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from blo_exchange.crypto.canonical import b64u_encode, canonical_json
from blo_exchange.domain.ids import format_time, parse_time
from blo_exchange.services.ports import NewLedgerEntry

__all__ = ["ENTRY_TYPES", "LEAF_FIELDS", "build_entry", "entry_json", "parse_leaf_input"]

ENTRY_TYPES = frozenset(
    {
        "alert_shared",
        "alert_delivered",
        "alert_acknowledged",
        "feedback",
        "alert_rejected",
        "ledger_queried",
        "key_registered",
        "key_revoked",
        "agreement_changed",
    }
)

LEAF_FIELDS = (
    "v",
    "type",
    "alert_id",
    "actor_node",
    "actor_agency",
    "recipients",
    "border_pair",
    "kind",
    "agreement_ids",
    "envelope_sha256",
    "occurred_at",
    "detail",
)


def build_entry(
    *,
    event_id: str,
    type: str,
    occurred_at: datetime,
    alert_id: str | None = None,
    actor_node: str | None = None,
    actor_agency: str | None = None,
    recipients: list[str] | tuple[str, ...] = (),
    border_pair: str | None = None,
    kind: str | None = None,
    agreement_ids: list[str] | tuple[str, ...] = (),
    envelope_sha256: str | None = None,
    detail: dict[str, Any] | None = None,
) -> NewLedgerEntry:
    if type not in ENTRY_TYPES:
        raise ValueError(f"unknown ledger entry type {type!r}")
    fields: dict[str, Any] = {
        "v": 1,
        "type": type,
        "alert_id": alert_id,
        "actor_node": actor_node,
        "actor_agency": actor_agency,
        "recipients": sorted(recipients),
        "border_pair": border_pair,
        "kind": kind,
        "agreement_ids": sorted(agreement_ids),
        "envelope_sha256": envelope_sha256,
        "occurred_at": format_time(occurred_at),
        "detail": detail or {},
    }
    return NewLedgerEntry(
        event_id=event_id,
        type=type,
        alert_id=alert_id,
        actor_node=actor_node,
        actor_agency=actor_agency,
        recipients=tuple(fields["recipients"]),
        border_pair=border_pair,
        kind=kind,
        occurred_at=parse_time(fields["occurred_at"]),
        leaf_input=canonical_json(fields),
    )


def parse_leaf_input(leaf_input: bytes) -> dict[str, Any]:
    """The fields of an entry, as an API response or a verifier shows them."""
    fields = json.loads(leaf_input)
    if not isinstance(fields, dict):
        raise ValueError("leaf_input is not a JSON object")
    return fields


def entry_json(index: int, leaf_input: bytes) -> dict[str, Any]:
    return {"index": index, "leaf_input": b64u_encode(leaf_input), **parse_leaf_input(leaf_input)}
