"""What an auditor's own pinned roots grant in an export bundle: the ledger's checkpoint keys,
the witnesses' keys and the nodes' keys, from the signed statements the bundle carries.

``ledger verify --roots FILE`` uses this instead of believing the bundle's ``ledger_public_key``,
``witness_keys`` and ``node_keys`` (which a node reads from its directory, and which whoever
hands over the bundle could have edited). In order:

(1) every statement in the bundle is verified again against the auditor's roots
    (``services.statements.verify_statements``, the same check every node makes); the ones that
    do not verify grant nothing;
(2) the ledger keys are those of the bundle's log origin granted by a ``ledger_key`` statement
    that every pinned agency signed, not revoked;
(3) the witness keys are those an agency's root granted to one of its nodes, not revoked;
(4) the node keys (revoked ones with their time) are those of signed nodes.

Not checked here: whether the roots file is the right one (the MoU annex's fingerprints,
compared by a person).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from blo_exchange.crypto.keys import VerifyKey
from blo_exchange.crypto.note import CosignatureVerifier, NoteVerifier
from blo_exchange.domain.ids import format_time
from blo_exchange.ledger.witness import witness_name
from blo_exchange.services.statements import verify_statements

__all__ = ["GrantedKeys", "granted_keys"]


@dataclass(frozen=True)
class GrantedKeys:
    """C2SP verifier key strings of the ledger (``ledger``) and of the witnesses
    (``witnesses``), and the node keys in the bundle's ``node_keys`` shape."""

    ledger: tuple[str, ...]
    witnesses: tuple[str, ...]
    node_keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    statements: int = 0
    refused: int = 0


def granted_keys(
    statements: Sequence[str], roots: Mapping[str, VerifyKey], *, origin: str
) -> GrantedKeys:
    """Steps (1)-(4) of the module docstring."""
    trusted = verify_statements([s.encode("utf-8") for s in statements], roots)  # (1)
    facts = trusted.facts
    ledger: list[str] = []
    witnesses: list[str] = []
    node_keys: dict[str, dict[str, Any]] = {
        node.id: {"agency": node.agency_id, "keys": []} for node in facts.nodes.values()
    }
    for fact in facts.keys:
        key = trusted.verify_keys.get(fact.key_id)
        if key is None:
            continue
        if fact.owner_kind == "ledger" and fact.owner_id == origin and fact.revoked_at is None:
            ledger.append(NoteVerifier(origin, key.public).verifier_key_string())  # (2)
        elif fact.owner_kind == "witness" and fact.revoked_at is None:
            witnesses.append(  # (3)
                CosignatureVerifier(witness_name(fact.owner_id), key.public).verifier_key_string()
            )
        elif fact.owner_kind == "node" and fact.owner_id in node_keys:
            node_keys[fact.owner_id]["keys"].append(  # (4)
                {
                    "key_id": fact.key_id,
                    "public": fact.public,
                    "revoked_at": None if fact.revoked_at is None else format_time(fact.revoked_at),
                }
            )
    return GrantedKeys(
        ledger=tuple(ledger),
        witnesses=tuple(witnesses),
        node_keys=node_keys,
        statements=len(trusted.statements),
        refused=len(statements) - len(trusted.statements),
    )
