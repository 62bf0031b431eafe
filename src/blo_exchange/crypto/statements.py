"""Signed directory statements: the bytes an agency's root key signs, and checking them.

A statement is what grants authority (a node, a key, a revocation, an agreement); see
``docs/statements.md`` for the contract. Its document is canonical JSON::

    {"v": 1, "statement": {...body...},
     "signatures": [{"agency": ..., "key_id": ..., "alg": "Ed25519", "sig": ...}, ...]}

Each signature is Ed25519 by one agency's root key over
``b"blo-exchange/v1/statement\\n" + RFC8785(body)``; signatures are independent, so parties co-sign
offline by adding theirs (:func:`cosign_statement`), in any order. The statement's id is the
SHA-256 of the canonical body: the same statement whoever has signed it so far.

This module checks bytes and signatures against the roots the caller pins. Which agencies must
sign a given body is the caller's rule (``domain.statements``); what the body means too.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from blo_exchange.crypto._fields import ED25519_ALG, expect_b64u, expect_object, expect_str
from blo_exchange.crypto.canonical import (
    b64u_encode,
    canonical_json,
    parse_canonical_json,
    sha256_hex,
)
from blo_exchange.crypto.keys import SigningKey, VerifyKey
from blo_exchange.errors import InvalidEnvelope, InvalidStatement

__all__ = [
    "STATEMENT_CONTEXT",
    "UnverifiedStatement",
    "VerifiedStatement",
    "cosign_statement",
    "sign_statement",
]

STATEMENT_CONTEXT: Final = b"blo-exchange/v1/statement\n"
_VERSION: Final = 1
_MAX_SIGNATURES: Final = 32


def _signature(body_bytes: bytes, agency: str, root: SigningKey) -> dict[str, str]:
    return {
        "agency": agency,
        "key_id": root.key_id,
        "alg": ED25519_ALG,
        "sig": b64u_encode(root.sign(STATEMENT_CONTEXT + body_bytes)),
    }


def _document(body: Any, signatures: Iterable[dict[str, str]]) -> bytes:
    ordered = sorted(signatures, key=lambda s: (s["agency"], s["key_id"]))
    return canonical_json({"v": _VERSION, "statement": body, "signatures": ordered})


def sign_statement(body: Mapping[str, Any], *, agency: str, root: SigningKey) -> bytes:
    """A new statement signed by ``agency``'s ``root``. ``ValueError`` for a body that is not
    float-free JSON object."""
    body_doc = parse_canonical_json(canonical_json(body))
    if not isinstance(body_doc, dict):
        raise ValueError("a statement body is an object")
    return _document(body_doc, [_signature(canonical_json(body_doc), expect_str(agency), root)])


def cosign_statement(raw: bytes, *, agency: str, root: SigningKey) -> bytes:
    """``raw`` with ``agency``'s signature added (or replaced). Checks structure, not the others'
    signatures: a co-signer should read the body (``UnverifiedStatement.body``) before signing."""
    statement = UnverifiedStatement.parse(raw)
    others = [s for s in statement.signatures if s["agency"] != agency]
    body = statement.body
    return _document(body, [*others, _signature(canonical_json(body), agency, root)])


class UnverifiedStatement:
    """A statement whose structure is checked and nothing else. Do not act on its body."""

    __slots__ = ("_body", "_raw", "_signatures")

    def __init__(self, raw: bytes) -> None:
        """Same as :meth:`parse`."""
        try:
            document = expect_object(
                parse_canonical_json(raw), frozenset({"v", "statement", "signatures"})
            )
            if type(document["v"]) is not int or document["v"] != _VERSION:
                raise ValueError("unsupported version")
            if not isinstance(document["statement"], dict):
                raise ValueError("statement body is not an object")
            signatures = document["signatures"]
            if not isinstance(signatures, list) or not 0 < len(signatures) <= _MAX_SIGNATURES:
                raise ValueError("signatures")
            for signature in signatures:
                record = expect_object(signature, frozenset({"agency", "key_id", "alg", "sig"}))
                expect_str(record["agency"])
                expect_str(record["key_id"])
                if record["alg"] != ED25519_ALG:
                    raise ValueError("alg")
                expect_b64u(record["sig"])
            if len({s["agency"] for s in signatures}) != len(signatures):
                raise ValueError("one signature per agency")
        except (ValueError, TypeError, KeyError):
            raise InvalidStatement("malformed") from None
        self._raw = bytes(raw)
        self._body: dict[str, Any] = document["statement"]
        self._signatures: list[dict[str, str]] = signatures

    @classmethod
    def parse(cls, raw: bytes) -> UnverifiedStatement:
        """Check ``raw`` is a well-formed statement; ``InvalidStatement`` otherwise."""
        return cls(raw)

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def body(self) -> dict[str, Any]:
        return copy.deepcopy(self._body)

    @property
    def statement_id(self) -> str:
        """SHA-256 (hex) of the canonical body: stable as signatures are added."""
        return sha256_hex(canonical_json(self._body))

    @property
    def signatures(self) -> list[dict[str, str]]:
        return copy.deepcopy(self._signatures)

    @property
    def signers(self) -> tuple[str, ...]:
        return tuple(s["agency"] for s in self._signatures)

    def verify(
        self, roots: Mapping[str, VerifyKey], *, required: Iterable[str]
    ) -> VerifiedStatement:
        """Check that every agency in ``required`` signed with its pinned root.

        (1) ``required`` is not empty; (2) for each required agency, a root is pinned for it,
        (3) the statement carries a signature by that agency under that root's key id, and
        (4) the signature is valid over the context string and the canonical body.
        Signatures by agencies not required are ignored, not trusted.
        Raises ``InvalidStatement`` (reason ``unsigned``, ``unpinned`` or ``bad_signature``).
        """
        needed = tuple(required)
        if not needed:
            raise InvalidStatement("unsigned")
        by_agency = {s["agency"]: s for s in self._signatures}
        signed_bytes = STATEMENT_CONTEXT + canonical_json(self._body)
        for agency in needed:
            root = roots.get(agency)
            if root is None:
                raise InvalidStatement("unpinned")
            signature = by_agency.get(agency)
            if signature is None or signature["key_id"] != root.key_id:
                raise InvalidStatement("unsigned")
            try:
                root.verify(expect_b64u(signature["sig"]), signed_bytes)
            except (InvalidEnvelope, ValueError):
                raise InvalidStatement("bad_signature") from None
        return VerifiedStatement(
            statement_id=self.statement_id, body=self.body, signers=needed, raw=self._raw
        )


@dataclass(frozen=True)
class VerifiedStatement:
    """A statement signed by every agency it needed, under roots the caller pinned.
    Built only by :meth:`UnverifiedStatement.verify`."""

    statement_id: str
    body: dict[str, Any]
    signers: tuple[str, ...]
    raw: bytes
