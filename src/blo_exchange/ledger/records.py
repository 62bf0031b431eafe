"""The signed record in every entry, and how an entry's fields follow from it [contract,
docs/contracts/ledger.md].

An entry about something a node said carries what the node signed, whole (``record``,
base64url in ``leaf_input``): the origin node's envelope with every part's ciphertext removed
(``crypto.envelope.redact_all``; the signature covers parts by hash, so it still verifies), the
partner's signed receipt or re-share record, the serving node's signed query record. The entry's
other fields are a function of that record (:func:`fields_from_record`), the same function the
ledger writer uses. So anyone holding the directory's node keys checks, offline, who said what
(:func:`check_record`), trusting neither the writer nor the database: the writer is trusted for
order only.

Entries with no record: directory changes (``key_registered``, ``key_revoked``,
``agreement_changed``; an agency's signed statement once issue 11 lands), and what the writer
itself rejected (``alert_rejected`` with ``detail.by = "ledger-writer"``: it failed verification,
so nobody could vouch for it). ``v: 1`` entries predate records: ``ledger verify`` accepts them
only before the first entry that has one.

Not checked from the record: ``envelope_sha256`` of an ``alert_shared`` entry (the hash of the
whole envelope, ciphertexts included, which the ledger does not keep).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from blo_exchange.crypto.canonical import b64u_decode
from blo_exchange.crypto.envelope import UnverifiedEnvelope, VerifiedEnvelope
from blo_exchange.crypto.keys import VerifyKey
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.domain.ids import parse_time
from blo_exchange.domain.ledger import RECEIPT_ENTRY_TYPES
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.ledger.audit import LEDGER_QUERIED
from blo_exchange.ledger.entries import build_entry, parse_leaf_input

__all__ = [
    "NO_RECORD_TYPES",
    "check_record",
    "query_fields",
    "receipt_fields",
    "shared_fields",
]

RECEIPT_TYPES = frozenset(t.value for t in RECEIPT_ENTRY_TYPES)
NO_RECORD_TYPES = frozenset({"key_registered", "key_revoked", "agreement_changed"})


def shared_fields(verified: VerifiedEnvelope, *, border_pair: str, kind: str) -> dict[str, Any]:
    """``build_entry`` arguments of an ``alert_shared`` entry (all but ids and hashes)."""
    header = verified.header
    return {
        "type": "alert_shared",
        "occurred_at": parse_time(str(header["created_at"])),
        "alert_id": verified.alert_id,
        "actor_node": str(header["origin_node"]),
        "actor_agency": str(header["origin_agency"]),
        "recipients": list(verified.recipients),
        "border_pair": border_pair,
        "kind": kind,
        "agreement_ids": [str(a) for a in header["agreement_ids"]],
        "detail": {"tlp": header["tlp"], "crossing_point": header["crossing_point"]},
    }


def receipt_fields(body: Mapping[str, Any], *, border_pair: str) -> dict[str, Any]:
    """``build_entry`` arguments of an entry made from a signed receipt or re-share record."""
    detail = dict(body.get("detail") or {})
    detail["receipt_id"] = body["receipt_id"]
    return {
        "type": str(body["type"]),
        "occurred_at": parse_time(str(body["occurred_at"])),
        "alert_id": body.get("alert_id"),
        "actor_node": str(body["node"]),
        "actor_agency": str(body["agency"]),
        "border_pair": border_pair,
        "kind": body.get("kind"),
        "agreement_ids": [str(a) for a in body.get("agreement_ids") or []],
        "envelope_sha256": body.get("envelope_sha256"),
        "detail": detail,
    }


def query_fields(node: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """``build_entry`` arguments of a ``ledger_queried`` entry."""
    detail = {name: body[name] for name in ("receipt_id", "principal", "path", "filters")}
    if "refused" in body:
        detail["refused"] = body["refused"]
    return {
        "type": LEDGER_QUERIED,
        "occurred_at": parse_time(str(body["occurred_at"])),
        "actor_node": node,
        "actor_agency": str(body["agency"]),
        "detail": detail,
    }


def check_record(
    leaf_input: bytes,
    node_keys: Mapping[str, Mapping[str, VerifyKey]],
    node_agencies: Mapping[str, str],
) -> str | None:
    """Why the entry's record does not vouch for it (None when it does, or has none to give).

    ``node_keys`` are each node's Ed25519 keys (by key id), ``node_agencies`` each node's
    agency, as the directory has them.
    """
    fields = parse_leaf_input(leaf_input)
    type_ = fields.get("type")
    raw = fields.get("record")
    detail = fields.get("detail") or {}
    if raw is None:
        if type_ in NO_RECORD_TYPES or (
            type_ == "alert_rejected" and detail.get("by") == "ledger-writer"
        ):
            return None
        return "it carries no signed record"
    try:
        record = b64u_decode(str(raw))
        if type_ == "alert_shared":
            envelope = UnverifiedEnvelope.parse(record)
            verified = envelope.verify_signature_only(
                node_keys.get(envelope.origin_node, {}),
                subject_border_pair=str(fields.get("border_pair")),
                subject_kind=str(fields.get("kind")),
            )
            signer = envelope.origin_node
            expected = shared_fields(
                verified, border_pair=str(fields["border_pair"]), kind=str(fields["kind"])
            ) | {"envelope_sha256": fields.get("envelope_sha256")}
        else:
            receipt = UnverifiedReceipt.parse(record)
            body = receipt.verify(node_keys.get(receipt.node, {})).body
            signer = receipt.node
            if type_ == LEDGER_QUERIED and body.get("type") == LEDGER_QUERIED:
                expected = query_fields(receipt.node, body)
            elif type_ in RECEIPT_TYPES and body.get("type") == type_:
                expected = receipt_fields(body, border_pair=str(fields.get("border_pair")))
            else:
                return f"its record is a {body.get('type')!r} record, not a {type_!r} one"
    except (InvalidEnvelope, ValueError, KeyError, TypeError) as exc:
        return f"its signed record does not verify ({getattr(exc, 'reason', None) or exc})"
    if node_agencies.get(signer) != expected["actor_agency"]:
        return f"its record names agency {expected['actor_agency']!r}, not {signer}'s"
    rebuilt = parse_leaf_input(build_entry(event_id="-", record=record, **expected).leaf_input)
    wrong = sorted(k for k in rebuilt if rebuilt[k] != fields.get(k))
    if wrong:
        return f"its field(s) {', '.join(wrong)} differ from its signed record"
    return None
