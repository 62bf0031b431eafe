"""What signed directory statements mean: who must sign each, and the directory they add up to.

Bodies (the contract is ``docs/statements.md``)::

    {"type": "node", "agency": A, "issued_at": T, "node": {<Node>}}
    {"type": "key", "agency": A, "issued_at": T, "owner_kind": "node"|"agency"|"witness",
     "owner_id": X, "key": {"key_id", "alg", "public"}}
    {"type": "revocation", "agency": A, "issued_at": T, "key_id": K, "revoked_at": T2}
    {"type": "agreement", "issued_at": T, "agreement": {<Agreement>}}
    {"type": "ledger_key", "issued_at": T, "origin": O, "agencies": [A, ...],
     "key": {"key_id", "alg": "Ed25519", "public"}}

Who must sign (:func:`required_signers`): the agency ``A`` a statement concerns; for an agreement,
the root of every party; for the hub's ledger key, which belongs to no single agency, the root of
every agency it lists. The caller checks the signatures; this module only sees statements that
passed, and folds them into :class:`DirectoryFacts` (:func:`build_facts`), in these steps:

1. a node statement counts only if its node's ``agency_id`` is its signer; a node id claimed by
   two agencies is disputed and refused whole (fail closed); the latest statement of a node wins;
2. an agreement's latest version (by ``issued_at``) wins; every version had every party's root;
3. a key counts only if its owner is its signer: the agency itself (``agency`` keys), or a node
   (step 1) of that agency (``node`` keys, and ``witness`` keys: a node runs the witness); a
   ledger key counts only if the agencies that signed it include every agency of
   ``ledger_members`` (the roots the process pins): no subset of agencies can install the log's
   key behind another's back. A key id claimed for two owners is disputed and refused;
4. a revocation counts only if signed by the key's agency (for a ledger key, any one of the
   agencies that signed it: withdrawing trust needs no consensus); the earliest ``revoked_at``
   wins.

Not decided here: whether a signature is valid (``crypto.statements``), nor what a node may say
in its messages (``domain.authority``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from blo_exchange.domain.directory import Agreement, Node
from blo_exchange.domain.ids import format_time, parse_time

__all__ = [
    "NOT_EVERY_AGENCY",
    "DirectoryFacts",
    "KeyFact",
    "NotEveryAgencyError",
    "agreement_statement",
    "build_facts",
    "key_statement",
    "ledger_key_statement",
    "node_statement",
    "required_signers",
    "revocation_statement",
    "signers_to_check",
]

NOT_EVERY_AGENCY = "ledger_key_not_signed_by_every_agency"


class NotEveryAgencyError(ValueError):
    """A ledger key statement that does not list every pinned agency."""


_KEY_OWNERS = frozenset({"node", "agency", "witness"})
_NODE_OWNED = frozenset({"node", "witness"})


@dataclass(frozen=True)
class KeyFact:
    """A public key as a verified statement grants it; ``public`` is its base64url text.
    ``agency`` is the owning agency ("" for the ledger's key, owned by none); ``signers`` the
    agencies whose roots granted it (one, or every agency of a ledger key)."""

    key_id: str
    owner_kind: str
    owner_id: str
    agency: str
    alg: str
    public: str
    issued_at: datetime
    revoked_at: datetime | None = None
    signers: tuple[str, ...] = ()

    def record(self) -> dict[str, str]:
        return {"key_id": self.key_id, "alg": self.alg, "public": self.public}


@dataclass(frozen=True)
class DirectoryFacts:
    nodes: Mapping[str, Node]
    agreements: Mapping[str, Agreement]
    keys: tuple[KeyFact, ...]
    refused: tuple[tuple[str, str], ...]
    """(statement id, reason) of each verified statement that nevertheless does not count."""


def required_signers(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The agencies whose roots must sign ``body``; ``ValueError`` for a body of no known type."""
    kind = body.get("type")
    if kind == "agreement":
        return tuple(Agreement.model_validate(body.get("agreement")).parties)
    if kind == "ledger_key":
        agencies = body.get("agencies")
        if (
            not isinstance(agencies, list)
            or not agencies
            or not all(isinstance(a, str) and a for a in agencies)
            or len(set(agencies)) != len(agencies)
        ):
            raise ValueError("a ledger key statement lists its agencies, each once")
        return tuple(agencies)
    if kind in ("node", "key", "revocation"):
        agency = body.get("agency")
        if not isinstance(agency, str) or not agency:
            raise ValueError("a statement names its agency")
        return (agency,)
    raise ValueError(f"unknown statement type {kind!r}")


def signers_to_check(body: Mapping[str, Any], pinned: Iterable[str]) -> tuple[str, ...]:
    """The agencies whose signatures a process pinning ``pinned`` checks on ``body``.

    :func:`required_signers`, except for a ledger key: it must list every pinned agency
    (``ValueError`` otherwise), and only the pinned ones' signatures can be checked here (an
    agency this process does not pin is no one it trusts either way)."""
    needed = required_signers(body)
    if body.get("type") != "ledger_key":
        return needed
    trusted = frozenset(pinned)
    if not trusted <= set(needed):
        raise NotEveryAgencyError(NOT_EVERY_AGENCY)
    return tuple(a for a in needed if a in trusted)


def _issued(body: Mapping[str, Any]) -> datetime:
    return parse_time(str(body["issued_at"]))


def build_facts(
    statements: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    ledger_members: Iterable[str] = (),
) -> DirectoryFacts:
    """Steps 1-4 of the module docstring over verified ``(statement id, body)`` pairs.
    ``ledger_members``: the agencies every ledger key must be signed by (the pinned roots)."""
    members = frozenset(ledger_members)
    refused: list[tuple[str, str]] = []
    by_type: dict[str, list[tuple[str, Mapping[str, Any]]]] = {}
    for statement_id, body in statements:
        by_type.setdefault(str(body.get("type")), []).append((statement_id, body))

    # (1) Nodes: signed by their own agency, claimed by one agency only, latest wins.
    nodes: dict[str, tuple[datetime, str, Node]] = {}
    claims: dict[str, set[str]] = {}
    for statement_id, body in by_type.get("node", []):
        try:
            node, issued = Node.model_validate(body["node"]), _issued(body)
        except (ValueError, KeyError, TypeError):
            refused.append((statement_id, "malformed"))
            continue
        if node.agency_id != body["agency"]:
            refused.append((statement_id, "node_of_another_agency"))
            continue
        claims.setdefault(node.id, set()).add(node.agency_id)
        if node.id not in nodes or (issued, statement_id) > nodes[node.id][:2]:
            nodes[node.id] = (issued, statement_id, node)
    for node_id, agencies in claims.items():
        if len(agencies) > 1:
            del nodes[node_id]
            refused.append((node_id, "disputed_node"))
    node_map = {node_id: entry[2] for node_id, entry in nodes.items()}

    # (2) Agreements: latest version wins.
    agreements: dict[str, tuple[datetime, str, Agreement]] = {}
    for statement_id, body in by_type.get("agreement", []):
        try:
            agreement, issued = Agreement.model_validate(body["agreement"]), _issued(body)
        except (ValueError, KeyError, TypeError):
            refused.append((statement_id, "malformed"))
            continue
        if agreement.id not in agreements or (issued, statement_id) > agreements[agreement.id][:2]:
            agreements[agreement.id] = (issued, statement_id, agreement)

    # (3) Keys: owned by their signer or one of its nodes; one owner per key id.
    keys: dict[str, KeyFact] = {}
    disputed: set[str] = set()
    for statement_id, body in [*by_type.get("key", []), *by_type.get("ledger_key", [])]:
        try:
            fact = _key_fact(body)
        except (ValueError, KeyError, TypeError):
            refused.append((statement_id, "malformed"))
            continue
        if fact.owner_kind == "ledger":
            if not members <= set(fact.signers):
                refused.append((statement_id, NOT_EVERY_AGENCY))
                continue
        elif fact.owner_kind not in _KEY_OWNERS or not (
            fact.owner_id == fact.agency
            if fact.owner_kind not in _NODE_OWNED
            else fact.owner_id in node_map and node_map[fact.owner_id].agency_id == fact.agency
        ):
            refused.append((statement_id, "key_of_another_owner"))
            continue
        known = keys.get(fact.key_id)
        if known is not None and (known.owner_kind, known.owner_id) != (
            fact.owner_kind,
            fact.owner_id,
        ):
            disputed.add(fact.key_id)
        elif known is None or fact.issued_at < known.issued_at:
            keys[fact.key_id] = fact
    for key_id in disputed:
        keys.pop(key_id, None)
        refused.append((key_id, "disputed_key"))

    # (4) Revocations by the key's own agency; the earliest time wins.
    for statement_id, body in by_type.get("revocation", []):
        try:
            key_id, at = str(body["key_id"]), parse_time(str(body["revoked_at"]))
        except (ValueError, KeyError, TypeError):
            refused.append((statement_id, "malformed"))
            continue
        key = keys.get(key_id)
        if key is None or body["agency"] not in key.signers:
            refused.append((statement_id, "revocation_of_another_key"))
            continue
        if key.revoked_at is None or at < key.revoked_at:
            keys[key_id] = replace(key, revoked_at=at)

    for kind in set(by_type) - {"node", "agreement", "key", "ledger_key", "revocation"}:
        refused.extend((statement_id, "unknown_type") for statement_id, _ in by_type[kind])
    return DirectoryFacts(
        nodes=node_map,
        agreements={agreement_id: entry[2] for agreement_id, entry in agreements.items()},
        keys=tuple(sorted(keys.values(), key=lambda k: (k.owner_kind, k.owner_id, k.key_id))),
        refused=tuple(refused),
    )


def _key_fact(body: Mapping[str, Any]) -> KeyFact:
    record = body["key"]
    if body["type"] == "ledger_key":
        origin = body["origin"]
        if not isinstance(origin, str) or not origin or record["alg"] != "Ed25519":
            raise ValueError("a ledger key is an Ed25519 key for a log origin")
        kind, owner, agency = "ledger", origin, ""
        signers = tuple(sorted(required_signers(body)))
    else:
        kind, owner, agency = str(body["owner_kind"]), str(body["owner_id"]), str(body["agency"])
        signers = (agency,)
    return KeyFact(
        key_id=str(record["key_id"]),
        owner_kind=kind,
        owner_id=owner,
        agency=agency,
        alg=str(record["alg"]),
        public=str(record["public"]),
        issued_at=_issued(body),
        signers=signers,
    )


def node_statement(node: Node, *, issued_at: datetime) -> dict[str, Any]:
    """The body by which ``node``'s agency registers it."""
    return {
        "type": "node",
        "agency": node.agency_id,
        "issued_at": format_time(issued_at),
        "node": node.model_dump(mode="json"),
    }


def key_statement(
    *, agency: str, owner_kind: str, owner_id: str, key: Mapping[str, str], issued_at: datetime
) -> dict[str, Any]:
    """The body by which ``agency`` registers a public key (``{"key_id", "alg", "public"}``)."""
    return {
        "type": "key",
        "agency": agency,
        "issued_at": format_time(issued_at),
        "owner_kind": owner_kind,
        "owner_id": owner_id,
        "key": dict(key),
    }


def revocation_statement(
    *, agency: str, key_id: str, revoked_at: datetime, issued_at: datetime
) -> dict[str, Any]:
    return {
        "type": "revocation",
        "agency": agency,
        "issued_at": format_time(issued_at),
        "key_id": key_id,
        "revoked_at": format_time(revoked_at),
    }


def ledger_key_statement(
    *, origin: str, agencies: Iterable[str], key: Mapping[str, str], issued_at: datetime
) -> dict[str, Any]:
    """The body by which every agency in ``agencies`` grants the hub's ledger of ``origin`` its
    checkpoint key; in force once all of them (and every agency a process pins) signed it."""
    return {
        "type": "ledger_key",
        "issued_at": format_time(issued_at),
        "origin": origin,
        "agencies": sorted(set(agencies)),
        "key": dict(key),
    }


def agreement_statement(agreement: Agreement, *, issued_at: datetime) -> dict[str, Any]:
    """The body every party's root signs for ``agreement`` to be in force."""
    return {
        "type": "agreement",
        "issued_at": format_time(issued_at),
        "agreement": agreement.model_dump(mode="json"),
    }
