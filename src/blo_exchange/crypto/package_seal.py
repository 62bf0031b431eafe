"""The offline package as carried: the archive HPKE-sealed to the destination agency's key
(docs/contracts/packages.md, "The sealed file").

The file is one line of canonical JSON, a newline, and the HPKE (RFC 9180, base mode) output::

    {"format": "blo-exchange-sealed-package/1", "for_agency": ..., "key_id": ..., "suite": ...}\\n
    <enc || ciphertext of the archive>

The line is bound to the ciphertext through HPKE's ``info``
(``b"blo-exchange/v1/package-seal\\n" + line``), so changing the agency or key named there makes
the file unopenable. Sealing hides everything in the package — the envelopes' headers, the
statements, the proofs — from whoever carries it. It does not say who sealed it (anyone may seal
to a public key): that is the signed manifest inside (``crypto.package``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from blo_exchange.crypto._fields import expect_object, expect_str
from blo_exchange.crypto.canonical import canonical_json, parse_canonical_json
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, KemPublicKey, hpke_suite
from blo_exchange.errors import InvalidPackage

__all__ = ["SEALED_FORMAT", "SEALED_MEMBER", "open_package", "seal_package", "sealed_header"]

SEALED_FORMAT: Final = "blo-exchange-sealed-package/1"
SEALED_MEMBER: Final = "sealed"
"""How a refusal names the sealed layer."""
_INFO_CONTEXT: Final = b"blo-exchange/v1/package-seal\n"
_MAX_HEADER: Final = 4096


def seal_package(archive: bytes, *, for_agency: str, key: KemPublicKey) -> bytes:
    """``archive`` sealed to ``for_agency``'s HPKE public ``key``."""
    line = canonical_json(
        {
            "format": SEALED_FORMAT,
            "for_agency": for_agency,
            "key_id": key.key_id,
            "suite": key.suite.value,
        }
    )
    sealed = hpke_suite(key.suite).encrypt(archive, key._hpke_key(), info=_INFO_CONTEXT + line)
    return line + b"\n" + sealed


def sealed_header(data: bytes) -> dict[str, Any]:
    """The clear line of a sealed package, checked for shape only."""
    end = data.find(b"\n", 0, _MAX_HEADER)
    try:
        if end < 0:
            raise ValueError("no header line")
        header = expect_object(
            parse_canonical_json(data[:end]), frozenset({"format", "for_agency", "key_id", "suite"})
        )
        if header["format"] != SEALED_FORMAT:
            raise ValueError("format")
        for name in ("for_agency", "key_id"):
            expect_str(header[name])
        HpkeSuite(header["suite"])
    except (ValueError, TypeError):
        raise InvalidPackage(SEALED_MEMBER, "not_a_sealed_package") from None
    return header


def open_package(data: bytes, *, agency: str, keys: Mapping[str, KemPrivateKey]) -> bytes:
    """The archive inside ``data``: (1) the file is a sealed package, (2) for ``agency``, (3) to a
    key among ``keys``, (4) and opens (anything changed anywhere in it does not)."""
    header = sealed_header(data)
    if header["for_agency"] != agency:
        raise InvalidPackage(SEALED_MEMBER, "for_another_agency")
    key = keys.get(header["key_id"])
    if key is None or key.key_id != header["key_id"] or key.suite.value != header["suite"]:
        raise InvalidPackage(SEALED_MEMBER, "no_private_key")
    line = data[: data.index(b"\n")]
    try:
        return hpke_suite(key.suite).decrypt(
            data[len(line) + 1 :], key._hpke_key(), info=_INFO_CONTEXT + line
        )
    except Exception:  # pyca raises several types here; all mean the same to us
        raise InvalidPackage(SEALED_MEMBER, "cannot_open") from None
