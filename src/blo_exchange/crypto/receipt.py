"""Delivery receipts: a receiving node's signed statement about an envelope.

The body (alert id, envelope hash, outcome, time...) is the caller's; this module only
signs it the same way envelopes are signed, under its own context string so a receipt
signature can never be passed off as an envelope signature or the reverse.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from blo_exchange.crypto._fields import (
    ED25519_ALG,
    Rejected,
    expect_b64u,
    expect_object,
    expect_str,
    signature_record,
)
from blo_exchange.crypto.canonical import b64u_encode, canonical_json, parse_canonical_json
from blo_exchange.crypto.keys import SigningKey, VerifyKey
from blo_exchange.errors import InvalidEnvelope

__all__ = [
    "MESSAGE_ID_CONTEXT",
    "RECEIPT_CONTEXT",
    "UnverifiedReceipt",
    "VerifiedReceipt",
    "record_message_id",
    "sign_receipt",
]

RECEIPT_CONTEXT: Final = b"blo-exchange/v1/receipt\n"
MESSAGE_ID_CONTEXT: Final = b"blo-exchange/v1/message-id\n"
_VERSION: Final = 1
_MESSAGE: Final = "invalid receipt"


def sign_receipt(body: Mapping[str, Any], signer: SigningKey) -> bytes:
    """``{"v": 1, "receipt": body, "signature": ...}`` as canonical JSON bytes.

    ``body`` must be float-free JSON with a non-empty string ``"node"`` (the signing node);
    ``ValueError`` otherwise.
    """
    body_doc = parse_canonical_json(canonical_json(body))
    if not isinstance(body_doc, dict):
        raise ValueError("a receipt body is an object")
    expect_str(body_doc.get("node"))
    return canonical_json(
        {
            "v": _VERSION,
            "receipt": body_doc,
            "signature": {
                "key_id": signer.key_id,
                "alg": ED25519_ALG,
                "sig": b64u_encode(signer.sign(RECEIPT_CONTEXT + canonical_json(body_doc))),
            },
        }
    )


def record_message_id(receipt_id: str, signer: SigningKey) -> str:
    """The ``Nats-Msg-Id`` under which a node publishes its record ``receipt_id``.

    SHA-256 (hex) of the node's Ed25519 signature over the context string and the id. Ed25519
    signatures are deterministic, so the same node re-sending the same record after a crash uses
    the same id and the stream drops the copy; nobody without the node's key can compute it, so
    nobody can publish something else under it first and have the real record dropped as a
    duplicate (receipt ids themselves are predictable: uuid5 of public values).
    """
    return hashlib.sha256(signer.sign(MESSAGE_ID_CONTEXT + receipt_id.encode())).hexdigest()


class UnverifiedReceipt:
    """A receipt whose structure is checked and nothing else."""

    __slots__ = ("_document", "_raw")

    def __init__(self, raw: bytes) -> None:
        """Same as :meth:`parse`."""
        try:
            document = expect_object(
                parse_canonical_json(raw), frozenset({"v", "receipt", "signature"})
            )
            if type(document["v"]) is not int or document["v"] != _VERSION:
                raise ValueError("unsupported version")
            if not isinstance(document["receipt"], dict):
                raise ValueError("receipt body is not an object")
            expect_str(document["receipt"].get("node"))
            signature_record(document["signature"])
        except (ValueError, TypeError, KeyError):
            raise Rejected("malformed", _MESSAGE) from None
        self._raw = bytes(raw)
        self._document: dict[str, Any] = document

    @classmethod
    def parse(cls, raw: bytes) -> UnverifiedReceipt:
        """Check ``raw`` is a well-formed receipt; ``InvalidEnvelope`` otherwise."""
        return cls(raw)

    @property
    def body(self) -> dict[str, Any]:
        return copy.deepcopy(self._document["receipt"])

    @property
    def node(self) -> str:
        return str(self._document["receipt"]["node"])

    @property
    def signature_key_id(self) -> str:
        return str(self._document["signature"]["key_id"])

    def verify(self, keys: Mapping[str, VerifyKey]) -> VerifiedReceipt:
        """Check the signature with the caller's trusted keys of ``node``, by key id.

        Not checked: that the receipt's fields (alert id, envelope hash) match anything.
        """
        signature = self._document["signature"]

        # 1. The signing key is one the caller trusts for this node.
        key = keys.get(signature["key_id"])
        if key is None or key.key_id != signature["key_id"]:
            raise Rejected("unknown_key", _MESSAGE)

        # 2. The signature is valid over the context string and the body.
        body = self._document["receipt"]
        try:
            key.verify(expect_b64u(signature["sig"]), RECEIPT_CONTEXT + canonical_json(body))
        except (InvalidEnvelope, ValueError):
            raise Rejected("bad_signature", _MESSAGE) from None
        return VerifiedReceipt(body=copy.deepcopy(body), raw=self._raw)


@dataclass(frozen=True)
class VerifiedReceipt:
    """A receipt signed by a key the caller trusts. Built only by ``UnverifiedReceipt.verify``."""

    body: dict[str, Any]
    raw: bytes
