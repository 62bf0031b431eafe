"""The exact byte form of a ledger entry [contract, docs/contracts/ledger.md], and how events map
to entries.

``leaf_input`` is RFC 8785 canonical JSON of the entry's fields; its Merkle leaf hash is
SHA-256(0x00 || leaf_input). Every field an auditor filters on is in those bytes, so an offline
verifier can recompute everything from the export alone. Changing this module changes the
contract: every earlier checkpoint would stop verifying.

Directory changes are entries too. Their actor fields name whose key or agreement it is (the
key's node and its agency, the key's agency; an agreement's parties as ``recipients``), so an
auditor's ``agency=`` filter finds an agency's key rotations; who typed the command is not known
to the ledger. Their event ids make each change recorded once:

- ``key_registered:<key_id>`` at the key's ``created_at``;
- ``key_revoked:<key_id>`` at its ``revoked_at``, once that moment has come (a revocation
  scheduled for later is recorded when it takes effect);
- ``agreement_changed:<id>:<sha256 of the agreement's canonical JSON>`` at the time the writer
  first saw that version. A change back to an earlier version has that version's id and is not
  recorded again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from blo_exchange.crypto.canonical import b64u_encode, canonical_json
from blo_exchange.domain.directory import Agreement
from blo_exchange.domain.ids import format_time, parse_time
from blo_exchange.domain.ledger import LedgerEntryType
from blo_exchange.services.ports import NewLedgerEntry

__all__ = [
    "ENTRY_TYPES",
    "ENTRY_VERSION",
    "INDEXED_COLUMNS",
    "LEAF_FIELDS",
    "DirectoryState",
    "KeyRecord",
    "agreement_changed_entry",
    "build_entry",
    "column_mismatches",
    "columns_digest",
    "directory_entries",
    "entry_json",
    "indexed_columns",
    "key_registered_entry",
    "key_revoked_entry",
    "parse_leaf_input",
]

ENTRY_TYPES: Final = frozenset(t.value for t in LedgerEntryType)

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
    "record",
)
"""The members of a ``v: 2`` entry; a ``v: 1`` entry (written before issue 12) has no
``record``."""

ENTRY_VERSION = 2


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
    record: bytes | None = None,
) -> NewLedgerEntry:
    """``record``: the signed record the entry is about (``ledger.records``), kept whole."""
    if type not in ENTRY_TYPES:
        raise ValueError(f"unknown ledger entry type {type!r}")
    fields: dict[str, Any] = {
        "v": ENTRY_VERSION,
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
        "record": None if record is None else b64u_encode(record),
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


INDEXED_COLUMNS = (
    "type",
    "alert_id",
    "actor_node",
    "actor_agency",
    "recipients",
    "border_pair",
    "kind",
    "occurred_at",
)
"""The database columns that index an entry, each a copy of the leaf field of the same name."""


def indexed_columns(fields: Mapping[str, Any]) -> dict[str, Any]:
    """What the indexed columns of an entry with these leaf fields must hold, as JSON values
    (``occurred_at`` in the leaf's own RFC 3339 form, ``recipients`` sorted)."""
    columns = {name: fields.get(name) for name in INDEXED_COLUMNS}
    columns["recipients"] = sorted(columns["recipients"] or [])
    return columns


def columns_digest(columns: Mapping[str, Any]) -> bytes:
    """8 bytes that change when any indexed column's value does (``occurred_at`` as a time, a
    string or a ``datetime``). Kept in memory only, so not canonical JSON: compact JSON of the
    values in column order, half the CPU (every answer re-digests a window of rows)."""
    values = [_normal(name, columns.get(name)) for name in INDEXED_COLUMNS]
    if isinstance(values[_OCCURRED_AT], datetime):
        values[_OCCURRED_AT] = format_time(values[_OCCURRED_AT])
    text = json.dumps(values, separators=(",", ":"), ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()[:8]


_OCCURRED_AT = INDEXED_COLUMNS.index("occurred_at")


def column_mismatches(leaf_input: bytes, columns: Mapping[str, Any]) -> list[str]:
    """The indexed columns whose stored value differs from the entry's signed-over bytes.

    ``columns`` holds the values as stored, in the form :func:`indexed_columns` gives them.
    """
    try:
        expected = indexed_columns(parse_leaf_input(leaf_input))
    except ValueError:
        return ["leaf_input"]
    return [
        name
        for name in INDEXED_COLUMNS
        if _normal(name, columns.get(name)) != _normal(name, expected[name])
    ]


def _normal(name: str, value: Any) -> Any:
    if name == "recipients":
        return sorted(value or []) if isinstance(value, list | tuple) else value
    if name == "occurred_at" and isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            return value
    return value


def entry_json(index: int, leaf_input: bytes) -> dict[str, Any]:
    return {"index": index, "leaf_input": b64u_encode(leaf_input), **parse_leaf_input(leaf_input)}


# --- directory changes ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """A row of the directory's public keys; ``owner_agency`` is a node key's agency."""

    key_id: str
    owner_kind: str
    owner_id: str
    owner_agency: str | None
    alg: str
    public: bytes
    created_at: datetime
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class DirectoryState:
    """The parts of the directory whose changes the ledger records, read in one transaction."""

    keys: tuple[KeyRecord, ...]
    agreements: tuple[Agreement, ...]


def _key_detail(key: KeyRecord) -> dict[str, Any]:
    return {
        "key_id": key.key_id,
        "owner_kind": key.owner_kind,
        "owner_id": key.owner_id,
        "alg": key.alg,
        "public_sha256": hashlib.sha256(key.public).hexdigest(),
    }


def _key_actors(key: KeyRecord) -> tuple[str | None, str | None]:
    """``(actor_node, actor_agency)``: whose key it is."""
    if key.owner_kind in ("node", "witness"):
        return key.owner_id, key.owner_agency
    if key.owner_kind == "agency":
        return None, key.owner_id
    return None, None


def key_registered_entry(key: KeyRecord) -> NewLedgerEntry:
    node, agency = _key_actors(key)
    return build_entry(
        event_id=f"key_registered:{key.key_id}",
        type="key_registered",
        occurred_at=key.created_at,
        detail=_key_detail(key),
        actor_node=node,
        actor_agency=agency,
    )


def key_revoked_entry(key: KeyRecord) -> NewLedgerEntry:
    if key.revoked_at is None:
        raise ValueError(f"key {key.key_id} is not revoked")
    node, agency = _key_actors(key)
    return build_entry(
        event_id=f"key_revoked:{key.key_id}",
        type="key_revoked",
        occurred_at=key.revoked_at,
        detail=_key_detail(key) | {"revoked_at": format_time(key.revoked_at)},
        actor_node=node,
        actor_agency=agency,
    )


def agreement_changed_entry(agreement: Agreement, *, seen_at: datetime) -> NewLedgerEntry:
    fields = agreement.model_dump(mode="json")
    digest = hashlib.sha256(canonical_json(fields)).hexdigest()
    return build_entry(
        event_id=f"agreement_changed:{agreement.id}:{digest}",
        type="agreement_changed",
        occurred_at=seen_at,
        recipients=[str(p) for p in agreement.parties],
        agreement_ids=[agreement.id],
        detail=fields,
    )


def directory_entries(state: DirectoryState, *, now: datetime) -> list[NewLedgerEntry]:
    """Every entry the directory's current state calls for, known or not, oldest change first.

    The caller skips the event ids the ledger already has.
    """
    entries = [key_registered_entry(k) for k in state.keys]
    entries += [
        key_revoked_entry(k) for k in state.keys if k.revoked_at is not None and k.revoked_at <= now
    ]
    entries += [agreement_changed_entry(a, seen_at=now) for a in state.agreements]
    return sorted(entries, key=lambda e: (e.occurred_at, e.event_id))
