"""Keys: Ed25519 signing keys, HPKE key-encapsulation keys, their ids, files and records.

A node signs with one Ed25519 key; an agency receives with one HPKE key pair in one of two
suites. Every key is named by a stable id derived from its public bytes, so the same public
key has the same id on every node, forever. Private keys live in JSON files of mode 0600.

Not here: which keys are current or revoked (that is the directory's business), and no
key is ever logged or printed: the private fields are left out of ``repr``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import ed25519, mlkem, x25519

from blo_exchange.crypto.canonical import b64u_decode, b64u_encode, canonical_json
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.errors import ConfigurationError, InvalidEnvelope

__all__ = [
    "ED25519_LABEL",
    "HpkeSuite",
    "KemPrivateKey",
    "KemPublicKey",
    "SigningKey",
    "VerifyKey",
    "hpke_suite",
    "key_id_for",
    "load_kem_key",
    "load_private_key",
    "load_signing_key",
    "public_key_from_record",
    "public_key_record",
    "save_private_key",
]

ED25519_LABEL = "ed25519"
_ED25519_ALG = "Ed25519"
_ED25519_KEY_LEN = 32

# ML-KEM-768 public keys are 1184 bytes, its private keys a 64-byte seed (FIPS 203 "d || z").
_MLKEM768_PUBLIC_LEN = 1184
_MLKEM768_SEED_LEN = 64
_X25519_LEN = 32


class HpkeSuite(StrEnum):
    """The two HPKE (RFC 9180) suites an envelope may use; the value is what goes on the wire."""

    MLKEM768_X25519 = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"
    X25519 = "X25519/HKDF-SHA256/AES-256-GCM"


_PUBLIC_LEN = {
    HpkeSuite.MLKEM768_X25519: _MLKEM768_PUBLIC_LEN + _X25519_LEN,
    HpkeSuite.X25519: _X25519_LEN,
}
_PRIVATE_LEN = {
    HpkeSuite.MLKEM768_X25519: _MLKEM768_SEED_LEN + _X25519_LEN,
    HpkeSuite.X25519: _X25519_LEN,
}


def hpke_suite(suite: HpkeSuite) -> hpke.Suite:
    """The pyca ``hpke.Suite`` for ``suite``."""
    # Coerce first: a plain string compared with ``is`` would silently pick X25519.
    suite = HpkeSuite(suite)
    kem = hpke.KEM.MLKEM768_X25519 if suite is HpkeSuite.MLKEM768_X25519 else hpke.KEM.X25519
    return hpke.Suite(kem, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_256_GCM)


def key_id_for(label: str, public: bytes) -> str:
    """Stable id of a public key: 32 hex chars of SHA-256(label || "\\n" || public).

    ``label`` is ``"ed25519"`` or the suite string, so equal bytes under two algorithms
    never share an id.
    """
    return hashlib.sha256(label.encode("utf-8") + b"\n" + public).hexdigest()[:32]


@dataclass(frozen=True)
class VerifyKey:
    """An Ed25519 public key as published in the directory."""

    key_id: str
    public: bytes

    @classmethod
    def from_public_bytes(cls, public: bytes) -> VerifyKey:
        """The key with its stable id; ``ValueError`` unless ``public`` is 32 bytes."""
        if len(public) != _ED25519_KEY_LEN:
            raise ValueError("an Ed25519 public key is 32 bytes")
        return cls(key_id=key_id_for(ED25519_LABEL, public), public=bytes(public))

    def verify(self, signature: bytes, data: bytes) -> None:
        """Return if ``signature`` is valid over ``data``; otherwise raise ``InvalidEnvelope``."""
        try:
            key = ed25519.Ed25519PublicKey.from_public_bytes(self.public)
            key.verify(signature, data)
        except (InvalidSignature, ValueError, TypeError):
            raise InvalidEnvelope("invalid signature") from None


@dataclass(frozen=True)
class SigningKey:
    """An Ed25519 private key (its raw 32 bytes) and the id of its public half."""

    key_id: str
    private: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.private) != _ED25519_KEY_LEN:
            raise ValueError("an Ed25519 private key is 32 bytes")

    @classmethod
    def generate(cls) -> SigningKey:
        return cls.from_private_bytes(ed25519.Ed25519PrivateKey.generate().private_bytes_raw())

    @classmethod
    def from_private_bytes(cls, private: bytes) -> SigningKey:
        """The key with its stable id computed from the public half."""
        public = ed25519.Ed25519PrivateKey.from_private_bytes(private).public_key()
        return cls(key_id=key_id_for(ED25519_LABEL, public.public_bytes_raw()), private=private)

    def public_bytes(self) -> bytes:
        """The raw 32-byte public key."""
        return self._key().public_key().public_bytes_raw()

    def sign(self, data: bytes) -> bytes:
        return self._key().sign(data)

    def verify_key(self) -> VerifyKey:
        return VerifyKey(key_id=self.key_id, public=self.public_bytes())

    @functools.cached_property
    def _key_object(self) -> ed25519.Ed25519PrivateKey:
        # Loaded once per key object, not on every signature (every receipt a node sends).
        return ed25519.Ed25519PrivateKey.from_private_bytes(self.private)

    def _key(self) -> ed25519.Ed25519PrivateKey:
        return self._key_object


@dataclass(frozen=True)
class KemPublicKey:
    """An agency's HPKE public key. For the hybrid suite, ML-KEM-768 public || X25519 public."""

    key_id: str
    suite: HpkeSuite
    public: bytes

    def __post_init__(self) -> None:
        # Accept the wire string too; an unknown suite is a ValueError here.
        object.__setattr__(self, "suite", HpkeSuite(self.suite))
        if len(self.public) != _PUBLIC_LEN[self.suite]:
            raise ValueError(f"a {self.suite} public key is {_PUBLIC_LEN[self.suite]} bytes")

    @classmethod
    def from_bytes(
        cls, suite: HpkeSuite | str, public: bytes, *, key_id: str | None = None
    ) -> KemPublicKey:
        """Validate ``public`` for ``suite`` and name it by its stable id.

        ``ValueError`` if the length is wrong, the bytes are not a usable key, or ``key_id``
        is given and is not the stable id of these bytes.
        """
        suite = HpkeSuite(suite)
        expected_id = key_id_for(suite.value, public)
        if key_id is not None and key_id != expected_id:
            raise ValueError("key_id does not match the public key")
        key = cls(key_id=expected_id, suite=suite, public=bytes(public))
        key._hpke_key()
        return key

    def _hpke_key(self) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
        """The pyca key object; ``ValueError`` if the bytes are not a valid key."""
        return self._hpke_key_object

    @functools.cached_property
    def _hpke_key_object(self) -> x25519.X25519PublicKey | hpke.MLKEM768X25519PublicKey:
        # Parsed once per key object (the directory caches these), not once per alert sealed:
        # an ML-KEM-768 public key's checks cost a tenth of a seal to two agencies (issue 14).
        if self.suite is HpkeSuite.X25519:
            return x25519.X25519PublicKey.from_public_bytes(self.public)
        return hpke.MLKEM768X25519PublicKey(
            mlkem.MLKEM768PublicKey.from_public_bytes(self.public[:_MLKEM768_PUBLIC_LEN]),
            x25519.X25519PublicKey.from_public_bytes(self.public[_MLKEM768_PUBLIC_LEN:]),
        )


@dataclass(frozen=True)
class KemPrivateKey:
    """An agency's HPKE private key.

    ``private`` is the X25519 raw 32 bytes, or for the hybrid suite the 64-byte ML-KEM-768
    seed followed by the X25519 raw 32 bytes (a seed, not the expanded key, because the
    seed is what FIPS 203 says to store and it is small).
    """

    key_id: str
    suite: HpkeSuite
    private: bytes = field(repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "suite", HpkeSuite(self.suite))
        if len(self.private) != _PRIVATE_LEN[self.suite]:
            raise ValueError(f"a {self.suite} private key is {_PRIVATE_LEN[self.suite]} bytes")

    @classmethod
    def generate(cls, suite: HpkeSuite) -> KemPrivateKey:
        suite = HpkeSuite(suite)
        private = x25519.X25519PrivateKey.generate().private_bytes_raw()
        if suite is HpkeSuite.MLKEM768_X25519:
            private = mlkem.MLKEM768PrivateKey.generate().private_bytes_raw() + private
        return cls.from_private_bytes(suite, private)

    @classmethod
    def from_private_bytes(cls, suite: HpkeSuite | str, private: bytes) -> KemPrivateKey:
        """The key with its stable id computed from its public half."""
        suite = HpkeSuite(suite)
        public = _kem_public_bytes(suite, private)
        return cls(key_id=key_id_for(suite.value, public), suite=suite, private=bytes(private))

    def public_key(self) -> KemPublicKey:
        return KemPublicKey(
            key_id=self.key_id,
            suite=self.suite,
            public=_kem_public_bytes(self.suite, self.private),
        )

    @functools.cached_property
    def _hpke_key_object(self) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
        # Expanding the ML-KEM seed costs about as much as the decapsulation itself: once per
        # key object, not once per alert opened (issue 14).
        return _kem_private(self.suite, self.private)

    def _hpke_key(self) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
        return self._hpke_key_object


def _kem_private(
    suite: HpkeSuite, private: bytes
) -> x25519.X25519PrivateKey | hpke.MLKEM768X25519PrivateKey:
    if suite is HpkeSuite.X25519:
        return x25519.X25519PrivateKey.from_private_bytes(private)
    return hpke.MLKEM768X25519PrivateKey(
        mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:_MLKEM768_SEED_LEN]),
        x25519.X25519PrivateKey.from_private_bytes(private[_MLKEM768_SEED_LEN:]),
    )


def _kem_public_bytes(suite: HpkeSuite, private: bytes) -> bytes:
    if suite is HpkeSuite.X25519:
        return x25519.X25519PrivateKey.from_private_bytes(private).public_key().public_bytes_raw()
    mlkem_key = mlkem.MLKEM768PrivateKey.from_seed_bytes(private[:_MLKEM768_SEED_LEN])
    x_key = x25519.X25519PrivateKey.from_private_bytes(private[_MLKEM768_SEED_LEN:])
    return mlkem_key.public_key().public_bytes_raw() + x_key.public_key().public_bytes_raw()


def public_key_record(key: SigningKey | VerifyKey | KemPrivateKey | KemPublicKey) -> dict[str, str]:
    """``{"key_id", "alg", "public"}`` as the directory publishes it; never private material."""
    if isinstance(key, SigningKey):
        key = key.verify_key()
    elif isinstance(key, KemPrivateKey):
        key = key.public_key()
    if isinstance(key, VerifyKey):
        return {"key_id": key.key_id, "alg": _ED25519_ALG, "public": b64u_encode(key.public)}
    return {"key_id": key.key_id, "alg": key.suite.value, "public": b64u_encode(key.public)}


def public_key_from_record(record: Mapping[str, Any]) -> VerifyKey | KemPublicKey:
    """Inverse of :func:`public_key_record`; ``ValueError`` if anything is off, key_id included."""
    if set(record) != {"key_id", "alg", "public"}:
        raise ValueError("a key record has exactly key_id, alg and public")
    key_id, alg, public_text = record["key_id"], record["alg"], record["public"]
    if not isinstance(key_id, str) or not isinstance(alg, str):
        raise ValueError("key_id and alg are strings")
    public = b64u_decode(public_text)
    if alg == _ED25519_ALG:
        key = VerifyKey.from_public_bytes(public)
        if key.key_id != key_id:
            raise ValueError("key_id does not match the public key")
        return key
    return KemPublicKey.from_bytes(alg, public, key_id=key_id)


def save_private_key(path: Path, key: SigningKey | KemPrivateKey) -> None:
    """Write ``key`` to ``path`` atomically, mode 0600.

    The bytes go to a temporary file in the same directory, created 0600 from the start (so
    the key is never readable by others, not even for a moment), fsynced, then renamed over
    ``path``; a crash leaves either the old file or the new one, never half of one.
    """
    path = Path(path)
    if isinstance(key, SigningKey):
        document: dict[str, Any] = {"type": "ed25519", "suite": None}
    else:
        document = {"type": "hpke", "suite": key.suite.value}
    document |= {"key_id": key.key_id, "private": b64u_encode(key.private)}
    data = canonical_json(document) + b"\n"

    write_private_file(path, data)


def load_private_key(path: Path) -> SigningKey | KemPrivateKey:
    """Read a key written by :func:`save_private_key`.

    ``ConfigurationError`` if the file is missing, readable by group or others, malformed,
    or its ``key_id`` is not the one its private key implies. Messages name the file, never
    its contents.
    """
    path = Path(path)
    # 1. Open once and check the mode of what was opened, so the check and the read agree.
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigurationError(f"cannot open key file {path}: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConfigurationError(f"key file {path} is not a regular file")
        # 2. Refuse a file that group or others may read or write.
        if info.st_mode & 0o077:
            raise ConfigurationError(
                f"key file {path} has mode {stat.S_IMODE(info.st_mode):04o}; it must be 0600"
            )
        with os.fdopen(os.dup(fd), "rb") as handle:
            data = handle.read()
    finally:
        os.close(fd)

    # 3. Parse; any shape problem is a configuration problem, reported without contents.
    try:
        document = json.loads(data.decode("utf-8"))
        if not isinstance(document, dict) or set(document) != {
            "type",
            "suite",
            "key_id",
            "private",
        }:
            raise ValueError("fields")
        private = b64u_decode(document["private"])
        key: SigningKey | KemPrivateKey
        if document["type"] == "ed25519" and document["suite"] is None:
            key = SigningKey.from_private_bytes(private)
        elif document["type"] == "hpke" and isinstance(document["suite"], str):
            key = KemPrivateKey.from_private_bytes(document["suite"], private)
        else:
            raise ValueError("type")
    except (ValueError, TypeError):
        raise ConfigurationError(f"key file {path} is malformed") from None

    # 4. The stored id must be the one the key implies, or the directory would disagree.
    if document["key_id"] != key.key_id:
        raise ConfigurationError(f"key file {path}: key_id does not match the key")
    return key


def load_signing_key(path: Path) -> SigningKey:
    key = load_private_key(path)
    if not isinstance(key, SigningKey):
        raise ConfigurationError(f"key file {path} does not hold an Ed25519 signing key")
    return key


def load_kem_key(path: Path) -> KemPrivateKey:
    key = load_private_key(path)
    if not isinstance(key, KemPrivateKey):
        raise ConfigurationError(f"key file {path} does not hold an HPKE key")
    return key
