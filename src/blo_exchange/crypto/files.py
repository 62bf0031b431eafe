"""Attachments of an envelope (docs/contracts/envelope.md, "File parts"): what a sender gives
to seal, the signed manifest a receiver reads, and opening a fetched file ciphertext.

A file part has one fresh key that seals two things: an inline *card* (canonical JSON: name,
media type, size, SHA-256 and an optional thumbnail of the plaintext) carried in the envelope
like ``case``, and the file itself, whose ciphertext travels outside the envelope (a NATS
Object Store bucket) and which the signature names by SHA-256 and size only.

Not here: fetching or storing the ciphertext, media checks (``services``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blo_exchange.crypto._fields import Rejected
from blo_exchange.crypto.canonical import sha256_hex

__all__ = ["FileManifest", "FilePart", "SealedAlert", "open_file_ciphertext"]


@dataclass(frozen=True)
class FilePart:
    """An attachment to seal: its card, its bytes, and whether it is personal data (a
    passport scan is: it goes only where the ``nominal`` block may go)."""

    card: bytes = field(repr=False)
    data: bytes = field(repr=False)
    nominal: bool = False


@dataclass(frozen=True)
class FileManifest:
    """The signed description of a file part's external ciphertext."""

    part: str
    sha256: str
    size: int
    nominal: bool
    nonce: bytes = field(repr=False)


@dataclass(frozen=True)
class SealedAlert:
    """A sealed envelope and the file ciphertexts it names, by part name."""

    envelope: bytes = field(repr=False)
    files: dict[str, bytes] = field(default_factory=dict, repr=False)


def open_file_ciphertext(
    manifest: FileManifest, key: bytes, ciphertext: bytes, aad: bytes
) -> bytes:
    """(1) The ciphertext is exactly the signed size and hash; (2) it decrypts under the part's
    key and AAD. ``InvalidEnvelope`` (reason ``file_hash`` or ``file_decrypt``) otherwise."""
    if len(ciphertext) != manifest.size or sha256_hex(ciphertext) != manifest.sha256:
        raise Rejected("file_hash")
    try:
        return AESGCM(key).decrypt(manifest.nonce, ciphertext, aad)
    except (InvalidTag, ValueError):
        raise Rejected("file_decrypt") from None
