"""The exact bytes that get signed, hashed and published.

RFC 8785 (JSON Canonicalization Scheme) turns a JSON value into one byte string, so a
signature over it means the same thing to every node. Floats are refused outright: signed
data carries integers and strings only, and no two implementations ever disagree about an
integer. Also here: strict base64url (RFC 4648 section 5, no padding) and SHA-256 in hex.

This module does not sign or encrypt anything; see ``keys`` and ``envelope``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, cast

import rfc8785

__all__ = [
    "b64u_decode",
    "b64u_encode",
    "b64u_length",
    "canonical_json",
    "canonical_object",
    "parse_canonical_json",
    "sha256_hex",
]

_B64U_ALPHABET = re.compile(r"[A-Za-z0-9_-]*")
_B64U_INDEX = {
    c: i for i, c in enumerate("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
}


def canonical_json(value: object) -> bytes:
    """Serialise ``value`` per RFC 8785; ``ValueError`` if it holds a float or a non-JSON type."""
    astral_keys: list[str] = []
    return _serialise(_plain(value, astral_keys), astral_keys)


def canonical_object(members: Mapping[str, bytes]) -> bytes:
    """RFC 8785 bytes of an object whose members' values are given already canonical (each what
    :func:`canonical_json` returned): what lets a signer reuse the bytes of a member it made
    once (the envelope's header: signed, bound as AAD and published) instead of walking it
    again. The keys must be ASCII: their order is then the same by code point as by UTF-16 code
    unit. Canonical members give a canonical whole, since JCS serialises each value on its own
    and only orders the keys."""
    out = []
    for key in sorted(members):
        if not isinstance(key, str) or not key.isascii():
            raise ValueError("canonical_object takes ASCII keys only")
        out.append(json.dumps(key, ensure_ascii=False).encode("ascii") + b":" + members[key])
    return b"{" + b",".join(out) + b"}"


def _serialise(plain: object, astral_keys: list[str]) -> bytes:
    """:func:`canonical_json` of a value :func:`_plain` gives (or the decoder does)."""
    if astral_keys:
        # Keys beyond the Basic Multilingual Plane sort differently by UTF-16 code units (RFC
        # 8785) than by code points (``sort_keys``): only then the slow, exact serialiser.
        try:
            return rfc8785.dumps(cast(Any, plain))
        except rfc8785.CanonicalizationError as exc:
            raise ValueError(f"not canonicalisable: {exc}") from None
    # Otherwise the C encoder writes the same bytes: with integers in the I-JSON range, string
    # keys and no floats (all checked by _plain), RFC 8785 differs from sorted compact JSON only
    # in key order; its string escapes are exactly json's with ensure_ascii=False.
    text = json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("not canonicalisable: input contains non-UTF-8 codepoints") from None


def parse_canonical_json(raw: bytes) -> Any:
    """Parse bytes that must already be RFC 8785 canonical JSON without floats.

    Rejects non-UTF-8, duplicate keys, floats, ``NaN``/``Infinity`` and any encoding that is
    not byte-for-byte canonical. The last rule means one logical document has exactly one
    encoding, so a hash of the bytes identifies the document. Raises ``ValueError``.
    """
    if not isinstance(raw, bytes | bytearray):
        raise ValueError("expected bytes")
    try:
        text = bytes(raw).decode("utf-8", errors="strict")
    except UnicodeDecodeError:
        raise ValueError("not UTF-8") from None
    astral_keys: list[str] = []

    def objects(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, item in pairs:
            if key in result:
                raise ValueError("duplicate JSON key")
            if not key.isascii() and max(key) > "\uffff":
                astral_keys.append(key)
            result[key] = item
        return result

    try:
        value = json.loads(
            text,
            object_pairs_hook=objects,
            parse_float=_reject_float,
            parse_int=_i_json_int,
            parse_constant=_reject_constant,
        )
        # json.JSONDecodeError is a ValueError; so are the hooks' errors. What the decoder gives
        # is already what canonical_json checks and copies into (dicts with string keys, lists,
        # strings, I-JSON integers, booleans, None; each key beyond U+FFFF noted by the hook):
        # serialised again as it would be, without that pass over the whole document again.
        canonical = _serialise(value, astral_keys)
    except RecursionError:
        raise ValueError("nested too deeply") from None
    if canonical != raw:
        raise ValueError("not canonical JSON")
    return value


def b64u_encode(data: bytes) -> str:
    """Base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    """Strict inverse of :func:`b64u_encode`; anything it would not produce is a ``ValueError``.

    Strict because these strings are inside signed documents: if two spellings decoded to the
    same bytes, a relay could change the published bytes without touching what they mean.
    """
    b64u_length(text)
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error:
        raise ValueError("not base64url") from None


def b64u_length(text: str) -> int:
    """How many bytes :func:`b64u_decode` would give, with the same checks, decoding nothing:
    what checks a field's form before anything needs its bytes."""
    # (1) Only the URL-safe alphabet; "=" padding, whitespace and "+/" are all refused.
    if not isinstance(text, str) or _B64U_ALPHABET.fullmatch(text) is None:
        raise ValueError("not base64url")
    # (2) A length of 1 mod 4 cannot come from any byte string.
    tail = len(text) % 4
    if tail == 1:
        raise ValueError("bad base64url length")
    # (3) Unused trailing bits must be zero (what b64u_encode writes, so that one byte string
    #     has one spelling): the last character's low 4 bits after 2 characters, 2 after 3.
    if tail and _B64U_INDEX[text[-1]] % (16 if tail == 2 else 4):
        raise ValueError("non-canonical base64url")
    return len(text) // 4 * 3 + max(tail - 1, 0)


def sha256_hex(data: bytes) -> str:
    """Lower-case hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


_INT_MAX = 2**53 - 1
"""I-JSON's integer range (RFC 7493), which RFC 8785 serialises exactly."""


def _plain(value: object, astral_keys: list[str]) -> object:
    """Copy ``value`` into dict/list/scalars, refusing floats, integers beyond I-JSON, non-string
    keys and other types anywhere; keys with characters beyond U+FFFF go into ``astral_keys``."""
    if isinstance(value, float):
        raise ValueError("floats are not allowed in signed data")
    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int):
        if not -_INT_MAX <= value <= _INT_MAX:
            raise ValueError(f"not canonicalisable: {value} is outside the I-JSON integer range")
        return value
    if isinstance(value, Mapping):
        plain: dict[str, object] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError("not canonicalisable: object keys must be strings")
            if not key.isascii() and max(key) > "\uffff":
                astral_keys.append(key)
            plain[key] = _plain(item, astral_keys)
        return plain
    if isinstance(value, list | tuple):
        return [_plain(item, astral_keys) for item in value]
    raise ValueError(f"unsupported type in JSON: {type(value).__name__}")


def _i_json_int(text: str) -> int:
    value = int(text)
    if not -_INT_MAX <= value <= _INT_MAX:
        raise ValueError(f"not canonicalisable: {value} is outside the I-JSON integer range")
    return value


def _reject_float(text: str) -> Any:
    raise ValueError("floats are not allowed")


def _reject_constant(text: str) -> Any:
    raise ValueError(f"{text} is not JSON")
