"""The offline package's bytes (docs/contracts/packages.md): a deterministic tar, and its signed
manifest.

A package is a POSIX ustar archive of regular files, ``manifest.json`` first and the rest in
name order, every header with mtime 0, owner 0:0 and mode 0444, so the same contents give the
same bytes. The manifest is canonical JSON::

    {"v": 1, "manifest": {...body, "members": [{"name", "sha256", "size"}, ...]},
     "signature": {"node": ..., "key_id": ..., "alg": "Ed25519", "sig": ...}}

signed by the exporting node's Ed25519 key over ``b"blo-exchange/v1/package\\n" + RFC8785(body)``:
a domain of its own, so no envelope, receipt or statement signature can pass for a manifest.

This module checks bytes: the archive's shape (:func:`read_archive`), the manifest's shape and
signature (:class:`UnverifiedManifest`), and that the members are exactly those listed
(:meth:`VerifiedManifest.check_members`). Which key is the exporter's, and what the members mean,
is the caller's (``services.package_import``). Every failure is an ``InvalidPackage`` naming the
member.
"""

from __future__ import annotations

import copy
import io
import re
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from blo_exchange.crypto._fields import ED25519_ALG, expect_b64u, expect_object, expect_str
from blo_exchange.crypto.canonical import (
    b64u_encode,
    canonical_json,
    parse_canonical_json,
    sha256_hex,
)
from blo_exchange.crypto.keys import SigningKey, VerifyKey
from blo_exchange.errors import InvalidEnvelope, InvalidPackage

__all__ = [
    "CHECKPOINT_MEMBER",
    "MANIFEST_MEMBER",
    "MAX_PACKAGE_BYTES",
    "PACKAGE_CONTEXT",
    "PACKAGE_FORMAT",
    "UnverifiedManifest",
    "VerifiedManifest",
    "read_archive",
    "sign_manifest",
    "write_archive",
]

PACKAGE_CONTEXT: Final = b"blo-exchange/v1/package\n"
PACKAGE_FORMAT: Final = "blo-exchange-package/1"
MANIFEST_MEMBER: Final = "manifest.json"
CHECKPOINT_MEMBER: Final = "checkpoint.txt"
MAX_PACKAGE_BYTES: Final = 512 * 1024 * 1024
_MAX_MEMBERS: Final = 200_000
_BLOCK: Final = 512
_NAME = re.compile(
    r"(manifest\.json|checkpoint\.txt|(envelopes|statements|proofs)/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}\.json)"
)
_VERSION: Final = 1


def write_archive(members: Mapping[str, bytes]) -> bytes:
    """The deterministic ustar archive of ``members`` (``manifest.json`` first, then by name)."""
    names = sorted(members, key=lambda n: (n != MANIFEST_MEMBER, n))
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name in names:
            if not _NAME.fullmatch(name):
                raise ValueError(f"not a package member name: {name!r}")
            info = tarfile.TarInfo(name)
            info.size = len(members[name])
            info.mtime = 0
            info.mode = 0o444
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(members[name]))
    return out.getvalue()


def read_archive(data: bytes) -> dict[str, bytes]:
    """Members by name, in archive order. Refuses (member ``archive``) anything but a complete
    ustar archive of regular files with package names, each once; nothing is written to disk."""
    if len(data) > MAX_PACKAGE_BYTES:
        raise InvalidPackage("archive", "too_large")
    members: dict[str, bytes] = {}
    end = 0
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as archive:
            for info in archive:
                if not info.isreg() or not _NAME.fullmatch(info.name):
                    raise InvalidPackage(info.name[:200] or "archive", "unexpected_member")
                if info.name in members:
                    raise InvalidPackage(info.name, "duplicate_member")
                if len(members) >= _MAX_MEMBERS:
                    raise InvalidPackage("archive", "too_many_members")
                handle = archive.extractfile(info)
                if handle is None:  # pragma: no cover - a regular file always has a handle
                    raise InvalidPackage(info.name, "unreadable")
                content = handle.read()
                if len(content) != info.size:
                    raise InvalidPackage(info.name, "truncated")
                members[info.name] = content
                end = info.offset_data + -(-info.size // _BLOCK) * _BLOCK
    except tarfile.TarError:
        raise InvalidPackage("archive", "truncated_or_malformed") from None
    # tarfile stops quietly where a cut falls between members: the two zero blocks that end
    # every archive are what says nothing was cut off.
    if not members or data[end : end + 2 * _BLOCK] != bytes(2 * _BLOCK):
        raise InvalidPackage("archive", "truncated")
    return members


def sign_manifest(body: Mapping[str, Any], *, node: str, signer: SigningKey) -> bytes:
    """The manifest document of ``body`` signed by ``node``'s ``signer``."""
    body_doc = parse_canonical_json(canonical_json(body))
    _check_body(body_doc)
    return canonical_json(
        {
            "v": _VERSION,
            "manifest": body_doc,
            "signature": {
                "node": node,
                "key_id": signer.key_id,
                "alg": ED25519_ALG,
                "sig": b64u_encode(signer.sign(PACKAGE_CONTEXT + canonical_json(body_doc))),
            },
        }
    )


def _check_body(body: Any) -> None:
    if not isinstance(body, dict) or body.get("format") != PACKAGE_FORMAT:
        raise ValueError("not a package manifest")
    for name in ("package_id", "exporter_node", "exporter_agency", "for_agency", "created_at"):
        expect_str(body.get(name))
    members = body.get("members")
    if not isinstance(members, list):
        raise ValueError("members")
    names = []
    for entry in members:
        entry = expect_object(entry, frozenset({"name", "sha256", "size"}))
        if not isinstance(entry["name"], str) or not _NAME.fullmatch(entry["name"]):
            raise ValueError("member name")
        if entry["name"] == MANIFEST_MEMBER:
            raise ValueError("the manifest does not list itself")
        if not isinstance(entry["sha256"], str) or not re.fullmatch(
            r"[0-9a-f]{64}", entry["sha256"]
        ):
            raise ValueError("member sha256")
        if type(entry["size"]) is not int or entry["size"] < 0:
            raise ValueError("member size")
        names.append(entry["name"])
    if names != sorted(set(names)):
        raise ValueError("members must be sorted and distinct")


class UnverifiedManifest:
    """A manifest whose shape is checked and nothing else; ``exporter_node`` is only for
    looking up the keys to verify it with."""

    __slots__ = ("_body", "_signature")

    def __init__(self, raw: bytes) -> None:
        try:
            document = expect_object(
                parse_canonical_json(raw), frozenset({"v", "manifest", "signature"})
            )
            if type(document["v"]) is not int or document["v"] != _VERSION:
                raise ValueError("version")
            _check_body(document["manifest"])
            signature = expect_object(
                document["signature"], frozenset({"node", "key_id", "alg", "sig"})
            )
            if signature["alg"] != ED25519_ALG:
                raise ValueError("alg")
            expect_str(signature["key_id"])
            expect_b64u(signature["sig"])
            if signature["node"] != document["manifest"]["exporter_node"]:
                raise ValueError("signed by another node than the exporter")
        except (ValueError, TypeError, KeyError):
            raise InvalidPackage(MANIFEST_MEMBER, "malformed") from None
        self._body: dict[str, Any] = document["manifest"]
        self._signature: dict[str, str] = signature

    @classmethod
    def parse(cls, raw: bytes) -> UnverifiedManifest:
        return cls(raw)

    @property
    def exporter_node(self) -> str:
        return str(self._body["exporter_node"])

    def verify(self, keys: Mapping[str, VerifyKey]) -> VerifiedManifest:
        """(1) The signing key is one of ``keys`` (the exporter node's, as the caller's directory
        has them); (2) the signature is valid over the context and the canonical body."""
        key = keys.get(self._signature["key_id"])
        if key is None or key.key_id != self._signature["key_id"]:
            raise InvalidPackage(MANIFEST_MEMBER, "unknown_exporter_key")
        try:
            key.verify(
                expect_b64u(self._signature["sig"]), PACKAGE_CONTEXT + canonical_json(self._body)
            )
        except (InvalidEnvelope, ValueError):
            raise InvalidPackage(MANIFEST_MEMBER, "bad_signature") from None
        return VerifiedManifest(body=copy.deepcopy(self._body))


@dataclass(frozen=True)
class VerifiedManifest:
    """A manifest signed by a key the caller trusts for its exporter node."""

    body: dict[str, Any] = field(repr=False)

    def get(self, name: str) -> Any:
        return copy.deepcopy(self.body.get(name))

    @property
    def names(self) -> list[str]:
        return [entry["name"] for entry in self.body["members"]]

    def check_members(self, members: Mapping[str, bytes]) -> None:
        """Every listed member is present with its size and SHA-256; nothing else is there."""
        for entry in self.body["members"]:
            content = members.get(entry["name"])
            if content is None:
                raise InvalidPackage(entry["name"], "missing")
            if len(content) != entry["size"] or sha256_hex(content) != entry["sha256"]:
                raise InvalidPackage(entry["name"], "sha256_mismatch")
        listed = {MANIFEST_MEMBER, *self.names}
        for name in members:
            if name not in listed:
                raise InvalidPackage(name, "not_in_manifest")
