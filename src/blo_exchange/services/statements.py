"""Believing the directory: only statements signed by pinned roots, whatever the database holds.

:func:`verify_statements` takes raw statements from anywhere (the node's own copy in Postgres, the
bus) and the roots pinned on this machine's disk, and returns the directory they add up to:

(1) each statement is parsed (malformed: refused);
(2) the agencies that must sign it are read from its body (``domain.statements``): the agency it
    concerns, every party of an agreement, or, for the hub's ledger key, every agency this
    process pins, all of which it must list (unknown type, or a ledger key not listing every
    pinned agency: refused);
(3) each of them signed it with its pinned root (``crypto.statements``); an agency with no pinned
    root cannot grant anything here (refused);
(4) the verified statements are folded into nodes, keys (with revocations) and agreements
    (``domain.statements.build_facts``), which refuses the ones that overreach;
(5) every key is parsed from its record; a key whose id does not match its bytes is refused.

:class:`TrustedDirectory` answers the ``Directory`` port's questions from those facts only.
Principals are not statements yet: it asks ``principals`` for them.

Not checked here: whether a pinned root is the right one — that is the MoU annex's fingerprint,
compared by a person when the file is written.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from blo_exchange.crypto.canonical import b64u_decode
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, VerifyKey, public_key_from_record
from blo_exchange.crypto.statements import UnverifiedStatement, VerifiedStatement
from blo_exchange.domain.directory import Agreement, Node, Principal
from blo_exchange.domain.ids import format_time
from blo_exchange.domain.statements import (
    NOT_EVERY_AGENCY,
    DirectoryFacts,
    KeyFact,
    NotEveryAgencyError,
    build_facts,
    signers_to_check,
)
from blo_exchange.errors import InvalidStatement, NotFound

__all__ = [
    "PrincipalLookup",
    "TrustedDirectory",
    "TrustedFacts",
    "accept_statement",
    "verify_statements",
]

log = logging.getLogger(__name__)


class PrincipalLookup(Protocol):
    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None: ...


@dataclass(frozen=True)
class TrustedFacts:
    facts: DirectoryFacts
    statements: tuple[VerifiedStatement, ...]
    """Every statement that verified, in the order given (to serve and to ledger)."""
    refused: tuple[tuple[str, str], ...]
    """(statement id or position, reason) of everything that did not count."""
    kem_keys: Mapping[str, KemPublicKey]
    verify_keys: Mapping[str, VerifyKey]


def accept_statement(raw: bytes, roots: Mapping[str, VerifyKey]) -> VerifiedStatement:
    """Steps (1)-(3) for one statement arriving on the bus, before a process keeps its copy.
    Raises ``InvalidStatement``. Steps (4)-(5) happen when the copy is read."""
    statement = UnverifiedStatement.parse(raw)
    try:
        needed = signers_to_check(statement.body, roots)
    except NotEveryAgencyError:
        raise InvalidStatement(NOT_EVERY_AGENCY) from None
    except (ValueError, TypeError):
        raise InvalidStatement("malformed") from None
    return statement.verify(roots, required=needed)


def verify_statements(raws: Iterable[bytes], roots: Mapping[str, VerifyKey]) -> TrustedFacts:
    """Steps (1)-(5) of the module docstring."""
    verified: list[VerifiedStatement] = []
    refused: list[tuple[str, str]] = []
    for position, raw in enumerate(raws):
        try:
            statement = UnverifiedStatement.parse(raw)  # (1)
            needed = signers_to_check(statement.body, roots)  # (2)
            verified.append(statement.verify(roots, required=needed))  # (3)
        except InvalidStatement as exc:
            refused.append((f"#{position}", exc.reason))
        except NotEveryAgencyError:
            refused.append((f"#{position}", NOT_EVERY_AGENCY))
        except (ValueError, TypeError):
            refused.append((f"#{position}", "malformed"))
    facts = build_facts(  # (4)
        ((s.statement_id, s.body) for s in verified), ledger_members=roots
    )
    refused.extend(facts.refused)
    kem: dict[str, KemPublicKey] = {}
    sign: dict[str, VerifyKey] = {}
    usable: list[KeyFact] = []
    for fact in facts.keys:  # (5)
        try:
            key = public_key_from_record(fact.record())
        except (ValueError, TypeError, KeyError):
            refused.append((fact.key_id, "bad_key"))
            continue
        usable.append(fact)
        if isinstance(key, VerifyKey):
            sign[fact.key_id] = key
        else:
            kem[fact.key_id] = key
    if refused:
        log.warning("directory statements refused", extra={"refused": refused[:20]})
    return TrustedFacts(
        facts=DirectoryFacts(
            nodes=facts.nodes,
            agreements=facts.agreements,
            keys=tuple(usable),
            refused=facts.refused,
        ),
        statements=tuple(verified),
        refused=tuple(refused),
        kem_keys=kem,
        verify_keys=sign,
    )


class TrustedDirectory:
    """The ``Directory`` port over verified statements; :meth:`update` swaps in new facts."""

    def __init__(self, facts: TrustedFacts, *, principals: PrincipalLookup) -> None:
        self._facts = facts
        self._principals = principals

    @property
    def facts(self) -> TrustedFacts:
        return self._facts

    def update(self, facts: TrustedFacts) -> None:
        self._facts = facts

    async def node(self, node_id: str) -> Node:
        node = self._facts.facts.nodes.get(node_id)
        if node is None:
            raise NotFound(f"no signed statement registers node {node_id}")
        return node

    async def agreements(self) -> list[Agreement]:
        return list(self._facts.facts.agreements.values())

    async def current_kem_key(self, agency_id: str, suite: HpkeSuite) -> KemPublicKey | None:
        """The newest unrevoked key of ``suite`` that ``agency_id``'s root registered for it."""
        candidates = [
            fact
            for fact in self._facts.facts.keys
            if fact.owner_kind == "agency"
            and fact.owner_id == agency_id
            and fact.alg == suite.value
            and fact.revoked_at is None
            and fact.key_id in self._facts.kem_keys
        ]
        if not candidates:
            return None
        newest = max(candidates, key=lambda f: (f.issued_at, f.key_id))
        return self._facts.kem_keys[newest.key_id]

    async def verify_keys(
        self, owner_kind: str, owner_id: str, at: datetime
    ) -> dict[str, VerifyKey]:
        return {
            fact.key_id: self._facts.verify_keys[fact.key_id]
            for fact in self._facts.facts.keys
            if fact.owner_kind == owner_kind
            and fact.owner_id == owner_id
            and fact.key_id in self._facts.verify_keys
            and (fact.revoked_at is None or fact.revoked_at > at)
        }

    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return await self._principals.principal_by_token_hash(token_hash)

    # --- what the ledger's readers believe (``ledger.ports.StatementKeys``) ---------------------

    async def witness_keys(self) -> list[tuple[str, bytes]]:
        """``(node id, Ed25519 public key)`` of every unrevoked witness key an agency's root
        granted to one of its nodes."""
        return [
            (fact.owner_id, self._facts.verify_keys[fact.key_id].public)
            for fact in self._facts.facts.keys
            if fact.owner_kind == "witness"
            and fact.revoked_at is None
            and fact.key_id in self._facts.verify_keys
        ]

    async def node_keys(self) -> dict[str, dict[str, Any]]:
        """Every signed node's agency and Ed25519 keys (revoked ones too, with the time), in the
        shape of ``LedgerReads.node_keys``."""
        out: dict[str, dict[str, Any]] = {
            node.id: {"agency": node.agency_id, "keys": []}
            for node in self._facts.facts.nodes.values()
        }
        for fact in self._facts.facts.keys:
            if fact.owner_kind == "node" and fact.owner_id in out and fact.alg == "Ed25519":
                out[fact.owner_id]["keys"].append(
                    {
                        "key_id": fact.key_id,
                        "public": b64u_decode(fact.public),
                        "revoked_at": None
                        if fact.revoked_at is None
                        else format_time(fact.revoked_at),
                    }
                )
        return out

    async def statement_texts(self) -> list[str]:
        """Every verified statement as signed, for an auditor to check against their own roots."""
        return [s.raw.decode() for s in self._facts.statements]
