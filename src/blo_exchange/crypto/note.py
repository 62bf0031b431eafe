"""C2SP signed notes with Ed25519 signatures, and the tlog-checkpoint notes they carry.

What this module is for: the byte-exact formats of https://c2sp.org/signed-note (signature type
0x01, Ed25519, only) and https://c2sp.org/tlog-checkpoint, so that the ledger's checkpoints can
be checked by any implementation of those specs (golang.org/x/mod/sumdb/note among them).

What it is not for: loading or storing keys (``crypto.keys``), deciding which keys to trust, or
checking a checkpoint against earlier ones (that takes Merkle proofs: ``ledger.merkle``).

It imports only the standard library and ``cryptography`` on purpose, so that it stays usable
by an offline verifier; hence :class:`NoteError` derives from ``ValueError`` alone.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from blo_exchange.crypto.keys import SigningKey

__all__ = [
    "COSIGNATURE_TYPE",
    "ED25519_SIGNATURE_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "Cosignature",
    "CosignatureVerifier",
    "Cosigner",
    "NoteError",
    "NoteSigner",
    "NoteVerifier",
    "cosignatures",
    "format_checkpoint",
    "key_id",
    "note_text",
    "open_checkpoint",
    "open_note",
    "parse_checkpoint",
    "parse_cosigner_key",
    "parse_verifier_key",
    "sign_note",
]

ED25519_SIGNATURE_TYPE = 0x01
COSIGNATURE_TYPE = 0x04
"""C2SP tlog-cosignature: timestamped Ed25519 cosignatures (``cosignature/v1``)."""
MAX_SIGNATURES = 100
"""Signature lines accepted in one note; the spec asks verifiers to accept at least 16."""

_SIG_PREFIX = "\N{EM DASH} "
_ED25519_KEY_SIZE = 32
_ED25519_SIG_SIZE = 64
_ROOT_SIZE = 32
_MAX_TREE_SIZE = 2**64 - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*")
_HEX_KEY_ID = re.compile(r"[0-9a-f]{8}")


class NoteError(ValueError):
    """A note, checkpoint, key name or verifier key is malformed, or a note did not verify."""


# --- names, text, base64 ------------------------------------------------------------------------


def _check_name(name: str) -> None:
    # Key names: non-empty, no Unicode spaces, no "+"; no control characters (whole-note rule).
    if not name or "+" in name or any(c.isspace() or c < " " for c in name):
        raise NoteError(f"invalid key name {name!r}")
    _check_utf8(name)


def _check_utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("text is not valid UTF-8") from None


def _check_text(text: str) -> bytes:
    """The UTF-8 bytes of a note text: it ends in a newline and has no other control character."""
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if any(c < " " and c != "\n" for c in text):
        raise NoteError("note text contains a control character")
    return _check_utf8(text)


def _b64decode(s: str) -> bytes:
    """Standard base64, padded, canonical (re-encodes to the same string)."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise NoteError("invalid base64") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise NoteError("non-canonical base64")
    return raw


def _b64encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def key_id(name: str, public_key_raw: bytes) -> bytes:
    """``SHA-256(name || 0x0A || 0x01 || public key)[:4]``: the spec's Ed25519 key ID."""
    _check_name(name)
    if len(public_key_raw) != _ED25519_KEY_SIZE:
        raise NoteError("an Ed25519 public key is 32 bytes")
    material = name.encode("utf-8") + b"\n" + bytes([ED25519_SIGNATURE_TYPE]) + public_key_raw
    return hashlib.sha256(material).digest()[:4]


# --- keys ---------------------------------------------------------------------------------------


class NoteSigner:
    """Signs note texts as key ``name`` with an Ed25519 private key."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        public_raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.name = name
        self.key_id = key_id(name, public_raw)
        self._private_key = private_key
        self._public_raw = public_raw

    @classmethod
    def from_signing_key(cls, name: str, key: SigningKey) -> NoteSigner:
        """A signer for one of our own Ed25519 keys (the ledger's)."""
        return cls(name, Ed25519PrivateKey.from_private_bytes(key.private))

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(self.name, self._public_raw)

    def signature_line(self, text: str) -> str:
        """``— <name> base64(key ID || signature)\\n`` over ``text`` (which must be valid)."""
        signature = self._private_key.sign(_check_text(text))
        return f"{_SIG_PREFIX}{self.name} {_b64encode(self.key_id + signature)}\n"

    def sign(self, text: str) -> str:
        """The whole signed note: ``text``, a blank line, one signature line."""
        return sign_note(text, [self])


class NoteVerifier:
    """Verifies signatures of key ``name`` made with an Ed25519 public key (32 raw bytes)."""

    def __init__(self, name: str, public_key_raw: bytes) -> None:
        self.key_id = key_id(name, public_key_raw)
        self.name = name
        self.public_key_raw = bytes(public_key_raw)
        self._public_key = Ed25519PublicKey.from_public_bytes(self.public_key_raw)

    def verifier_key_string(self) -> str:
        """``<name>+<hex key ID>+<base64(0x01 || public key)>``, the spec's verifier key."""
        typed_key = bytes([ED25519_SIGNATURE_TYPE]) + self.public_key_raw
        return f"{self.name}+{self.key_id.hex()}+{_b64encode(typed_key)}"

    def verify(self, text: bytes, signature: bytes) -> bool:
        try:
            self._public_key.verify(signature, text)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"NoteVerifier({self.verifier_key_string()!r})"


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Parse ``<name>+<hex key ID>+<base64(0x01 || public key)>``; the key ID must match."""
    # The base64 part may itself contain "+", and the name may not: split from the left.
    name, _, rest = vkey.partition("+")
    hex_id, _, b64 = rest.partition("+")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError("verifier key ID must be 8 lowercase hex digits")
    typed_key = _b64decode(b64)
    if len(typed_key) != 1 + _ED25519_KEY_SIZE or typed_key[0] != ED25519_SIGNATURE_TYPE:
        raise NoteError("verifier key is not an Ed25519 key")
    verifier = NoteVerifier(name, typed_key[1:])
    if verifier.key_id.hex() != hex_id:
        raise NoteError("verifier key ID does not match its name and key")
    return verifier


# --- notes --------------------------------------------------------------------------------------


def sign_note(text: str, signers: Sequence[NoteSigner]) -> str:
    """``text``, a blank line, then one signature line per signer, in order."""
    if not signers:
        raise NoteError("a note needs at least one signer")
    _check_text(text)
    return text + "\n" + "".join(s.signature_line(text) for s in signers)


def open_note(note: str | bytes, verifiers: Sequence[NoteVerifier]) -> str:
    """The text of ``note`` once a signature by one of ``verifiers`` has verified.

    Raises :class:`NoteError` when the note is malformed, when a signature that names a known
    key (name *and* key ID) does not verify, or when no known key signed it. Signatures from
    unknown keys are ignored. The checks, in order, are numbered below.
    """
    # (1) The whole note is UTF-8 without control characters other than newline.
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("note is not valid UTF-8") from None
    _check_utf8(note)
    if any(c < " " and c != "\n" for c in note):
        raise NoteError("note contains a control character")
    # (2) The text ends at the last blank line; signature lines follow, each ending in newline.
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("note has no signature block")
    text, sig_block = note[: split + 1], note[split + 2 :]
    lines = sig_block[:-1].split("\n") if sig_block else []
    if not lines:
        raise NoteError("note has no signatures")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError("note has too many signatures")
    known = _index_verifiers(verifiers)
    text_bytes = text.encode("utf-8")
    verified = 0
    for line in lines:
        # (3) Each line is "— <name> <base64 of key ID || signature>" with a valid name.
        if not line.startswith(_SIG_PREFIX):
            raise NoteError("malformed signature line")
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        _check_name(name)
        blob = _b64decode(b64)
        if len(blob) < 5:
            raise NoteError("signature too short")
        sig_key_id, signature = blob[:4], blob[4:]
        # (4) Unknown (name, key ID) pairs are ignored; known ones must verify, each time they
        # appear (repeats are allowed, as golang.org/x/mod/sumdb/note allows them).
        verifier = known.get((name, sig_key_id))
        if verifier is None:
            continue
        if len(signature) != _ED25519_SIG_SIZE or not verifier.verify(text_bytes, signature):
            raise NoteError(f"invalid signature by {name}")
        verified += 1
    # (5) At least one known key signed. Not checked: which key, or how many; that is policy.
    if not verified:
        raise NoteError("no signature by a known key")
    return text


def _index_verifiers(verifiers: Sequence[NoteVerifier]) -> dict[tuple[str, bytes], NoteVerifier]:
    known: dict[tuple[str, bytes], NoteVerifier] = {}
    for v in verifiers:
        other = known.setdefault((v.name, v.key_id), v)
        if other.public_key_raw != v.public_key_raw:
            raise NoteError(f"two verifier keys share the name and key ID of {v.name}")
    return known


# --- checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The body of a tlog-checkpoint note. Says nothing about who signed it."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def text(self) -> str:
        return format_checkpoint(self.origin, self.size, self.root_hash, self.extensions)


def _check_line(line: str, what: str) -> None:
    if not line or any(c < " " for c in line):
        raise NoteError(f"checkpoint {what} must be a non-empty line")


def format_checkpoint(origin: str, size: int, root: bytes, extensions: Sequence[str] = ()) -> str:
    """``<origin>\\n<size>\\n<base64 root>\\n`` followed by any extension lines."""
    _check_line(origin, "origin")
    if not 0 <= size <= _MAX_TREE_SIZE:
        raise NoteError("checkpoint size out of range")
    if len(root) != _ROOT_SIZE:
        raise NoteError("checkpoint root hash must be 32 bytes")
    for ext in extensions:
        _check_line(ext, "extension")
    return "".join(f"{line}\n" for line in (origin, str(size), _b64encode(root), *extensions))


def parse_checkpoint(text: str) -> Checkpoint:
    """Parse a checkpoint note text (not a signed note: pass it through :func:`open_note`)."""
    if not text.endswith("\n"):
        raise NoteError("checkpoint must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError("checkpoint has fewer than three lines")
    origin, size_line, root_line, *extensions = lines
    _check_line(origin, "origin")
    if not _DECIMAL.fullmatch(size_line) or int(size_line) > _MAX_TREE_SIZE:
        raise NoteError("checkpoint size is not a decimal number without leading zeros")
    root = _b64decode(root_line)
    if len(root) != _ROOT_SIZE:
        raise NoteError("checkpoint root hash must be 32 bytes")
    for ext in extensions:
        _check_line(ext, "extension")
    return Checkpoint(origin, int(size_line), root, tuple(extensions))


def open_checkpoint(
    note: str | bytes, verifiers: Sequence[NoteVerifier], origin: str
) -> Checkpoint:
    """Verify a signed checkpoint note, parse it and check that it is from log ``origin``."""
    checkpoint = parse_checkpoint(open_note(note, verifiers))
    if checkpoint.origin != origin:
        raise NoteError("checkpoint is for another log")
    return checkpoint


# --- cosignatures (C2SP tlog-cosignature, Ed25519, timestamped) ---------------------------------

_COSIGNATURE_HEADER = "cosignature/v1\n"
_MAX_TIMESTAMP = 2**63 - 1


def cosigner_key_id(name: str, public_key_raw: bytes) -> bytes:
    """``SHA-256(name || 0x0A || 0x04 || public key)[:4]``: a cosigner's key ID."""
    _check_name(name)
    if len(public_key_raw) != _ED25519_KEY_SIZE:
        raise NoteError("an Ed25519 public key is 32 bytes")
    material = name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_TYPE]) + public_key_raw
    return hashlib.sha256(material).digest()[:4]


def _cosigned_message(text: str, timestamp: int) -> bytes:
    """``cosignature/v1\ntime <timestamp>\n`` followed by the checkpoint's note text."""
    if not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise NoteError("cosignature timestamp out of range")
    return (_COSIGNATURE_HEADER + f"time {timestamp}\n").encode("ascii") + _check_text(text)


@dataclass(frozen=True, slots=True)
class Cosignature:
    """A verified cosignature: which cosigner, over which text, when (POSIX seconds)."""

    name: str
    key_id: bytes
    timestamp: int
    line: str


class Cosigner:
    """A witness: cosigns checkpoint texts as key ``name`` (signature type 0x04)."""

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        public_raw = private_key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.name = name
        self.key_id = cosigner_key_id(name, public_raw)
        self._private_key = private_key
        self.public_key_raw = public_raw

    @classmethod
    def from_signing_key(cls, name: str, key: SigningKey) -> Cosigner:
        return cls(name, Ed25519PrivateKey.from_private_bytes(key.private))

    def verifier(self) -> CosignatureVerifier:
        return CosignatureVerifier(self.name, self.public_key_raw)

    def cosign(self, text: str, timestamp: int) -> str:
        """The signature line ``— <name> base64(key ID || u64 timestamp || signature)\n``."""
        signature = self._private_key.sign(_cosigned_message(text, timestamp))
        blob = self.key_id + timestamp.to_bytes(8, "big") + signature
        return f"{_SIG_PREFIX}{self.name} {_b64encode(blob)}\n"


class CosignatureVerifier:
    """Verifies one cosigner's timestamped Ed25519 cosignatures."""

    def __init__(self, name: str, public_key_raw: bytes) -> None:
        self.key_id = cosigner_key_id(name, public_key_raw)
        self.name = name
        self.public_key_raw = bytes(public_key_raw)
        self._public_key = Ed25519PublicKey.from_public_bytes(self.public_key_raw)

    def verifier_key_string(self) -> str:
        """``<name>+<hex key ID>+<base64(0x04 || public key)>``."""
        typed_key = bytes([COSIGNATURE_TYPE]) + self.public_key_raw
        return f"{self.name}+{self.key_id.hex()}+{_b64encode(typed_key)}"

    def verify(self, text: str, blob: bytes) -> int | None:
        """The timestamp of a valid cosignature blob (after the key ID) over ``text``."""
        if len(blob) != 8 + _ED25519_SIG_SIZE:
            return None
        timestamp = int.from_bytes(blob[:8], "big")
        try:
            self._public_key.verify(blob[8:], _cosigned_message(text, timestamp))
        except (InvalidSignature, NoteError):
            return None
        return timestamp


def parse_cosigner_key(vkey: str) -> CosignatureVerifier:
    """Parse ``<name>+<hex key ID>+<base64(0x04 || public key)>``; the key ID must match."""
    name, _, rest = vkey.partition("+")
    hex_id, _, b64 = rest.partition("+")
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise NoteError("cosigner key ID must be 8 lowercase hex digits")
    typed_key = _b64decode(b64)
    if len(typed_key) != 1 + _ED25519_KEY_SIZE or typed_key[0] != COSIGNATURE_TYPE:
        raise NoteError("not a timestamped Ed25519 cosigner key (type 0x04)")
    verifier = CosignatureVerifier(name, typed_key[1:])
    if verifier.key_id.hex() != hex_id:
        raise NoteError("cosigner key ID does not match its name and key")
    return verifier


def note_text(note: str) -> str:
    """The text of a signed note (up to the last blank line), without checking signatures."""
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no signature block")
    return note[: split + 1]


def cosignatures(
    note: str, verifiers: Sequence[CosignatureVerifier]
) -> tuple[list[Cosignature], list[str]]:
    """The valid cosignatures on ``note`` by ``verifiers``, and the names of known cosigners
    whose line did not verify. Lines by other keys are ignored; each cosigner counts once."""
    text = note_text(note)
    known = {(v.name, v.key_id): v for v in verifiers}
    valid: dict[str, Cosignature] = {}
    invalid: list[str] = []
    for line in note[len(text) + 1 :].splitlines():
        if not line.startswith(_SIG_PREFIX):
            continue
        name, _, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        try:
            blob = _b64decode(b64)
        except NoteError:
            continue
        verifier = known.get((name, blob[:4]))
        if verifier is None:
            continue
        timestamp = verifier.verify(text, blob[4:])
        if timestamp is None:
            invalid.append(name)
        elif name not in valid:
            valid[name] = Cosignature(name, verifier.key_id, timestamp, line + "\n")
    return list(valid.values()), invalid
