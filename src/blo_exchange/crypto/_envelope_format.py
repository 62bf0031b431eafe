"""The envelope's wire format (docs/contracts/envelope.md): its shape, and the bytes signed and
bound.

Private to ``envelope``: structure checks raise ``ValueError`` and say nothing of keys or
signatures; ``envelope`` turns them into one opaque ``InvalidEnvelope``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

from blo_exchange.crypto._fields import (
    expect_b64u_form,
    expect_object,
    expect_str,
    expect_string_list,
    is_sha256_hex,
    signature_record,
)
from blo_exchange.crypto.canonical import canonical_json, canonical_object
from blo_exchange.crypto.keys import HpkeSuite

__all__ = [
    "MAX_FILES",
    "NONCE_LEN",
    "PART_KEY_LEN",
    "PART_NAMES",
    "SIGNATURE_CONTEXT",
    "VERSION",
    "check_header",
    "check_structure",
    "file_aad",
    "file_part_name",
    "header_aad",
    "header_aad_of",
    "hpke_info",
    "is_file_part",
    "part_order",
    "signed_bytes",
    "signed_bytes_of",
]

PART_NAMES: Final = ("case", "nominal")
# Attachments are parts ``file-1`` .. ``file-16``: an inline sealed card (name, type, thumbnail)
# and a manifest of the file's ciphertext, which travels outside the envelope (Object Store).
MAX_FILES: Final = 16
_FILE_PART = re.compile(r"file-([1-9][0-9]?)")
FILE_CLASSES: Final = ("case", "nominal")
SIGNATURE_CONTEXT: Final = b"blo-exchange/v1/envelope\n"
VERSION: Final = 1

# Header fields the envelope itself relies on; the rest of the header is the caller's.
_HEADER_STRINGS: Final = ("alert_id", "kind", "border_pair", "origin_node", "origin_agency")
PART_KEY_LEN: Final = 32
NONCE_LEN: Final = 12
TAG_LEN: Final = 16

_TOP_KEYS: Final = frozenset({"v", "header", "recipients", "parts", "signature"})
_RECIPIENT_KEYS: Final = frozenset({"agency", "key_id", "parts", "enc"})
_PART_KEYS: Final = frozenset({"nonce", "ciphertext", "sha256"})
_REDACTED_PART_KEYS: Final = frozenset({"sha256"})
_FILE_EXTRA_KEYS: Final = frozenset({"class", "file"})
_FILE_MANIFEST_KEYS: Final = frozenset({"nonce", "sha256", "size"})
_MAX_SAFE_INT: Final = 2**53 - 1


def file_part_name(index: int) -> str:
    """The part name of the ``index``-th attachment (from 1)."""
    if not 1 <= index <= MAX_FILES:
        raise ValueError(f"at most {MAX_FILES} attachments")
    return f"file-{index}"


def is_file_part(name: str) -> bool:
    match = _FILE_PART.fullmatch(name)
    return match is not None and int(match.group(1)) <= MAX_FILES


def part_order(name: str) -> tuple[int, int]:
    """Sort key of part names: ``case``, ``nominal``, then ``file-1``, ``file-2``..."""
    if name in PART_NAMES:
        return (0, PART_NAMES.index(name))
    return (1, int(name.removeprefix("file-")))


def _check_file_record(record: dict[str, Any]) -> None:
    if record.get("class") not in FILE_CLASSES:
        raise ValueError("bad file class")
    manifest = expect_object(record.get("file"), _FILE_MANIFEST_KEYS)
    expect_b64u_form(manifest["nonce"], length=NONCE_LEN)
    if not is_sha256_hex(manifest["sha256"]):
        raise ValueError("bad file hash")
    size = manifest["size"]
    if type(size) is not int or not TAG_LEN <= size <= _MAX_SAFE_INT:
        raise ValueError("bad file size")


def check_header(header: Any) -> None:
    if not isinstance(header, dict):
        raise ValueError("header must be an object")
    for name in (*_HEADER_STRINGS, "suite"):
        expect_str(header.get(name))
    # "|" separates the fields of the HPKE info string; a UUID never contains one.
    if "|" in header["alert_id"]:
        raise ValueError("alert_id must not contain '|'")
    HpkeSuite(header["suite"])


def check_structure(document: Any) -> None:
    """Everything about the shape of an envelope; raises ``ValueError``."""
    document = expect_object(document, _TOP_KEYS)
    # bool is an int in Python; "v": true is not version 1.
    if type(document["v"]) is not int or document["v"] != VERSION:
        raise ValueError("unsupported version")
    check_header(document["header"])

    parts = document["parts"]
    if not isinstance(parts, dict) or not parts:
        raise ValueError("bad parts")
    for name, record in parts.items():
        extra: frozenset[str] = frozenset()
        if is_file_part(name):
            extra = _FILE_EXTRA_KEYS
            if not isinstance(record, dict):
                raise ValueError("bad part")
            _check_file_record(record)
        elif name not in PART_NAMES:
            raise ValueError("bad parts")
        if isinstance(record, dict) and set(record) == _REDACTED_PART_KEYS | extra:
            pass
        else:
            expect_object(record, _PART_KEYS | extra)
            expect_b64u_form(record["nonce"], length=NONCE_LEN)
            expect_b64u_form(record["ciphertext"], min_length=TAG_LEN)
        if not is_sha256_hex(record["sha256"]):
            raise ValueError("bad part hash")

    recipients = document["recipients"]
    if not isinstance(recipients, list) or not recipients:
        raise ValueError("bad recipients")
    for entry in recipients:
        expect_object(entry, _RECIPIENT_KEYS)
        expect_str(entry["agency"])
        expect_str(entry["key_id"])
        names = expect_string_list(entry["parts"])
        if not set(names) <= set(parts):
            raise ValueError("recipient part not in envelope")
        expect_b64u_form(entry["enc"], min_length=1)
    expect_string_list([entry["agency"] for entry in recipients])

    signature_record(document["signature"])


def signed_bytes(document: Mapping[str, Any]) -> bytes:
    """What the signature covers: context || RFC 8785(envelope, parts reduced to hashes).

    A part is reduced to all but its ``nonce`` and ``ciphertext``: ``{sha256}`` for ``case`` and
    ``nominal``; for a file part also its ``class`` and its file manifest (the ciphertext's
    SHA-256 and size), so the signature names every attachment's bytes."""
    signed = {
        "v": document["v"],
        "header": document["header"],
        "recipients": document["recipients"],
        "parts": _reduced(document["parts"]),
    }
    return SIGNATURE_CONTEXT + canonical_json(signed)


def signed_bytes_of(
    v: int, header: bytes, recipients: bytes, parts: Mapping[str, Mapping[str, Any]]
) -> bytes:
    """:func:`signed_bytes` for a signer that holds the canonical bytes of the ``header`` and
    of the ``recipients`` list already (the same bytes, without walking either again)."""
    return SIGNATURE_CONTEXT + canonical_object(
        {
            "v": canonical_json(v),
            "header": header,
            "recipients": recipients,
            "parts": canonical_json(_reduced(parts)),
        }
    )


def _reduced(parts: Mapping[str, Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each part without its ``nonce`` and ``ciphertext``: what the signature names it by."""
    return {
        name: {k: v for k, v in record.items() if k not in ("nonce", "ciphertext")}
        for name, record in parts.items()
    }


def header_aad(header: Mapping[str, Any]) -> bytes:
    return header_aad_of(canonical_json(header))


def header_aad_of(header: bytes) -> bytes:
    """:func:`header_aad` of a header given as its canonical bytes."""
    return hashlib.sha256(header).digest()


def file_aad(
    header: Mapping[str, Any], part: str, what: str, *, bound: bytes | None = None
) -> bytes:
    """AAD of a file part's card (``what="card"``) or its file (``"data"``): both are under the
    part's one key, so the AAD names the part and which of the two it is. ``bound``: the
    header's :func:`header_aad`, when the caller has it already."""
    return (header_aad(header) if bound is None else bound) + f"|{part}|{what}".encode()


def hpke_info(alert_id: str, agency: str) -> bytes:
    return f"blo-exchange/v1|{alert_id}|{agency}".encode()
