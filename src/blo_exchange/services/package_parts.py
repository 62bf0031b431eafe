"""What the offline-package use cases share: member names, the ports they need, and which directory
statements an envelope's verification rests on.

The format is docs/contracts/packages.md; the bytes are ``crypto.package``; the use cases are
``services.package_export`` and ``services.package_import``. Not here: Merkle proofs (``ledger``
sits outside ``services``, so checking and collecting them is behind :class:`ProofChecker` and
:class:`ProofSource`, implemented in ``ledger.package_proofs``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from blo_exchange.crypto.statements import VerifiedStatement

__all__ = [
    "DeliveryConfirmations",
    "LedgerProofs",
    "ProofChecker",
    "ProofSource",
    "StatementSource",
    "envelope_member",
    "proof_member",
    "statement_member",
    "statements_for",
]


def envelope_member(alert_id: str) -> str:
    return f"envelopes/{alert_id}.json"


def proof_member(alert_id: str) -> str:
    return f"proofs/{alert_id}.json"


def statement_member(raw_sha256: str) -> str:
    return f"statements/{raw_sha256}.json"


@dataclass(frozen=True)
class LedgerProofs:
    """What the exporting side's ledger says of the alerts packed: a signed checkpoint and, per
    alert id, the proof document of its ``alert_shared`` entry under it (canonical JSON)."""

    origin: str | None
    checkpoint: str | None = None
    proofs: Mapping[str, bytes] = field(default_factory=dict)
    problem: str | None = None
    """Why there are no proofs at all (the ledger unreachable, no checkpoint yet), if so."""


class ProofSource(Protocol):
    async def collect(self, alerts: Sequence[tuple[str, str]]) -> LedgerProofs:
        """Proofs for ``(alert_id, envelope_sha256)`` pairs, each against the latest checkpoint;
        an alert with no ``alert_shared`` entry of those bytes under it gets none."""
        ...


class DeliveryConfirmations(Protocol):
    async def confirmed(self, alert_ids: Sequence[str], agency: str) -> set[str]:
        """The ids among ``alert_ids`` for which the ledger holds an ``alert_delivered`` receipt
        from a node of ``agency``."""
        ...


class ProofChecker(Protocol):
    async def check(
        self, origin: str, checkpoint: bytes, proofs: Mapping[str, tuple[str, bytes]]
    ) -> int:
        """Verify the checkpoint with the ledger key this node trusts for ``origin`` and each
        proof (alert id -> (envelope SHA-256, proof document)) under it; returns the tree size.
        Raises ``InvalidPackage`` naming the member."""
        ...


class StatementSource(Protocol):
    async def verified(self) -> Sequence[VerifiedStatement]:
        """The directory statements this node believes (verified against its pinned roots)."""
        ...


def statements_for(
    statements: Iterable[VerifiedStatement], *, nodes: set[str], agreement_ids: set[str]
) -> list[VerifiedStatement]:
    """The statements an importer needs to verify envelopes of ``nodes`` citing
    ``agreement_ids``, and the package's checkpoint: each node's statements, its keys'
    statements and their revocations, every version of each agreement, and every ledger key
    statement (with its revocations: an importer cut off during a rotation learns the new key,
    in force for it only if every agency it pins signed it). Every version is included: the
    importer folds them with its own, and the latest wins there as here."""
    chosen: list[VerifiedStatement] = []
    keys: set[str] = set()
    later: list[VerifiedStatement] = []
    for statement in statements:
        body: Mapping[str, Any] = statement.body
        kind = body.get("type")
        if kind == "node" and _get(body, "node", "id") in nodes:
            chosen.append(statement)
        elif (
            kind == "key" and body.get("owner_kind") == "node" and body.get("owner_id") in nodes
        ) or kind == "ledger_key":
            chosen.append(statement)
            keys.add(str(_get(body, "key", "key_id")))
        elif kind == "agreement" and _get(body, "agreement", "id") in agreement_ids:
            chosen.append(statement)
        elif kind == "revocation":
            later.append(statement)
    chosen += [s for s in later if s.body.get("key_id") in keys]
    return chosen


def _get(body: Mapping[str, Any], outer: str, inner: str) -> Any:
    value = body.get(outer)
    return value.get(inner) if isinstance(value, dict) else None
