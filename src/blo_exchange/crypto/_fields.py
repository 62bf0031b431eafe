"""Private helpers shared by ``envelope`` and ``receipt``: strict field checks and rejections.

The field checks raise ``ValueError``; the parsers turn that into one opaque
``InvalidEnvelope``. A rejection carries a short machine reason for metrics and the
``alert_rejected`` record, never for the message text.
"""

from __future__ import annotations

import re
from typing import Any

from blo_exchange.crypto.canonical import b64u_decode, b64u_length
from blo_exchange.errors import InvalidEnvelope

__all__ = [
    "ED25519_ALG",
    "SIGNATURE_LEN",
    "Rejected",
    "expect_b64u",
    "expect_b64u_form",
    "expect_object",
    "expect_str",
    "expect_string_list",
    "is_sha256_hex",
    "rejection_reason",
    "signature_record",
]

ED25519_ALG = "Ed25519"
SIGNATURE_LEN = 64
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


class Rejected(InvalidEnvelope):
    """An ``InvalidEnvelope`` whose message says nothing; ``reason`` is for counting only."""

    def __init__(self, reason: str, message: str = "invalid envelope") -> None:
        super().__init__(message)
        self.reason = reason


def rejection_reason(exc: BaseException) -> str:
    """The machine reason of a rejection (``"malformed"`` when it carries none)."""
    reason = getattr(exc, "reason", None)
    return reason if isinstance(reason, str) else "malformed"


def expect_object(value: Any, keys: frozenset[str]) -> dict[str, Any]:
    """``value`` must be a JSON object with exactly ``keys``."""
    if not isinstance(value, dict) or set(value) != keys:
        raise ValueError("wrong object shape")
    return value


def expect_str(value: Any) -> str:
    """A non-empty string."""
    if not isinstance(value, str) or not value:
        raise ValueError("expected a non-empty string")
    return value


def expect_string_list(value: Any) -> list[str]:
    """A list of distinct non-empty strings."""
    if not isinstance(value, list):
        raise ValueError("expected a list")
    items = [expect_str(item) for item in value]
    if len(set(items)) != len(items):
        raise ValueError("duplicate list item")
    return items


def expect_b64u(value: Any, *, length: int | None = None, min_length: int = 0) -> bytes:
    """Strict base64url of exactly ``length`` bytes, or at least ``min_length``."""
    expect_b64u_form(value, length=length, min_length=min_length)
    return b64u_decode(value)


def expect_b64u_form(value: Any, *, length: int | None = None, min_length: int = 0) -> None:
    """:func:`expect_b64u`'s checks, decoding nothing (a field whose bytes are read later)."""
    if not isinstance(value, str):
        raise ValueError("expected base64url")
    size = b64u_length(value)
    if (length is not None and size != length) or size < min_length:
        raise ValueError("wrong decoded length")


def is_sha256_hex(value: Any) -> bool:
    return isinstance(value, str) and _SHA256_HEX.fullmatch(value) is not None


def signature_record(value: Any) -> tuple[str, bytes]:
    """``{"key_id", "alg": "Ed25519", "sig"}`` -> (key_id, signature bytes)."""
    record = expect_object(value, frozenset({"key_id", "alg", "sig"}))
    if record["alg"] != ED25519_ALG:
        raise ValueError("unsupported signature algorithm")
    return expect_str(record["key_id"]), expect_b64u(record["sig"], length=SIGNATURE_LEN)
