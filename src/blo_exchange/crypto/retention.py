"""Crypto-shredding of a recipient's nominal parts (docs/retention.md): the node-local keys that
alone open a stored nominal block or nominal file, and destroying them.

A recipient node stores an alert as its envelope with the ciphertexts of its nominal parts
removed (:func:`split_nominal`): the ``nominal`` block, and the card (name, hash, thumbnail) of
each ``class: nominal`` file. The signature covers parts by hash, so the stored form still
verifies and its ``case`` (and case files) still open with the agency key. The removed part
records are sealed once more under a fresh 32-byte **data key** (AES-256-GCM), and that data key
is wrapped under the node's **epoch key** of the day the block expires: one random 32-byte key
per UTC day, a 0600 file ``<key dir>/retention/<YYYY-MM-DD>.key``, never in the database. A
nominal file's ciphertext, fetched later, is sealed under the same data key
(:func:`seal_nominal_file`) before the node stores it.

So the database alone (or a backup of it), even with the agency's private key, opens no
nominal part: the agency key opens the parts' original keys, but the only copies of the parts
the node kept are under the epoch key. Destroying the epoch key file (:meth:`EpochKeys.destroy`)
makes every nominal part of that day unopenable at this node. Not covered here: the original
envelope and files still in the JetStream stream and bucket (docs/threat-model.md says what
bounds them).

Failures to open are the opaque :class:`~blo_exchange.errors.InvalidEnvelope` (reason
``nominal_erased`` when the epoch key is gone).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blo_exchange.crypto._fields import Rejected
from blo_exchange.crypto.canonical import canonical_json, parse_canonical_json
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.errors import ConfigurationError

__all__ = [
    "EpochKeys",
    "SealedNominal",
    "carries_nominal",
    "envelope_document",
    "holds_nominal_block",
    "join_nominal",
    "nominal_readers",
    "open_nominal",
    "open_nominal_file",
    "rewrap_nominal",
    "seal_nominal",
    "seal_nominal_file",
    "split_nominal",
]

_KEY_LEN: Final = 32
_NONCE_LEN: Final = 12
_PART_CONTEXT: Final = b"blo-exchange/v1/nominal-vault\n"
_WRAP_CONTEXT: Final = b"blo-exchange/v1/nominal-epoch\n"
_FILE_CONTEXT: Final = b"blo-exchange/v1/nominal-file\n"
_FILE_RE: Final = re.compile(r"(\d{4}-\d{2}-\d{2})\.key")


@dataclass(frozen=True)
class SealedNominal:
    """What the database keeps of a nominal part: useless without the epoch key of ``day``."""

    day: date
    wrapped_key: bytes
    sealed_part: bytes


class EpochKeys:
    """The node's epoch keys, one 0600 file per expiry day under ``folder``.

    A key read once is kept in memory while its file is the same (same inode, same change time,
    same size): a delivered alert with a nominal block costs one ``stat`` instead of opening and
    reading the file (issue 14). The file stays the authority: once it is gone, destroyed here or
    by anyone else, or replaced, the kept copy is not used again.
    """

    def __init__(self, folder: Path, *, rng: Callable[[int], bytes] = os.urandom) -> None:
        self._folder = folder
        self._rng = rng
        self._read: dict[date, tuple[tuple[int, int, int, int], bytes]] = {}

    def _path(self, day: date) -> Path:
        return self._folder / f"{day.isoformat()}.key"

    def get(self, day: date, *, create: bool) -> bytes | None:
        """The key of ``day``; with ``create``, made if missing. None if missing (destroyed)."""
        path = self._path(day)
        try:
            found = path.stat()
        except FileNotFoundError:
            self._read.pop(day, None)
            if not create:
                return None
            self._folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            data = self._rng(_KEY_LEN)
            # Two processes creating the same day at once: both write, the later rename wins,
            # and the loser's wrap would not open. One node process runs per key dir.
            write_private_file(path, data)
            return data
        if found.st_mode & 0o077:
            raise ConfigurationError(f"{path} must be readable by its owner only (chmod 600)")
        stamp = (found.st_dev, found.st_ino, found.st_ctime_ns, found.st_size)
        kept = self._read.get(day)
        if kept is not None and kept[0] == stamp:
            return kept[1]
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self._read.pop(day, None)
            return self.get(day, create=create)  # destroyed between the two calls
        if len(data) != _KEY_LEN:
            raise ConfigurationError(f"{path} is not a retention key")
        self._read[day] = (stamp, data)
        return data

    def days(self) -> list[date]:
        """Days whose key still exists, oldest first."""
        if not self._folder.exists():
            return []
        found = (_FILE_RE.fullmatch(p.name) for p in self._folder.iterdir())
        return sorted(date.fromisoformat(m.group(1)) for m in found if m is not None)

    def destroy(self, day: date) -> bool:
        """Overwrite and remove the key file of ``day`` (True if there was one).

        Overwriting is best effort (a journaling or copy-on-write file system, or an SSD, may
        keep the old blocks); what is guaranteed is that no file of this node names the key.
        """
        self._read.pop(day, None)
        path = self._path(day)
        try:
            fd = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return False
        try:
            os.write(fd, b"\0" * _KEY_LEN)
            os.fsync(fd)
        finally:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        dir_fd = os.open(self._folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
        return True


_NOMINAL_CIPHERTEXT: Final = b'"nominal":{"ciphertext":'
"""How a nominal part that still has its ciphertext begins in canonical JSON (keys sorted)."""
_NOMINAL_CLASS: Final = b'"class":"nominal"'
"""What a nominal file part (a passport scan) carries in canonical JSON."""
_SEALED_MEMBERS: Final = ("nonce", "ciphertext")


def carries_nominal(raw: bytes) -> bool:
    """Whether ``raw`` may carry a nominal ciphertext (the block or a nominal file's card): a
    byte search, so the common alert without one is not parsed again. False is certain for a
    canonical envelope; True needs parsing."""
    return _NOMINAL_CIPHERTEXT in raw or _NOMINAL_CLASS in raw


def holds_nominal_block(raw: bytes) -> bool:
    """Whether canonical ``raw`` still carries the nominal block's ciphertext: False for an
    envelope that never had one and for one whose block was redacted (kept in the vault, erased,
    or never readable here)."""
    return _NOMINAL_CIPHERTEXT in raw


def _is_nominal(name: str, record: Any) -> bool:
    return isinstance(record, dict) and (name == "nominal" or record.get("class") == "nominal")


def envelope_document(raw: bytes) -> dict[str, Any]:
    """``raw`` parsed (its structure only: the caller verified it, or sealed it), for one parse
    shared by :func:`split_nominal`, :func:`nominal_readers` and the caller's own reads."""
    return _document(raw)


def split_nominal(
    raw: bytes, *, document: dict[str, Any] | None = None
) -> tuple[bytes, bytes] | None:
    """``raw`` without the ciphertexts of its nominal parts (the ``nominal`` block and the cards
    of ``class: nominal`` files, each left as a redacted part keeps it), and those parts'
    records as canonical JSON ``{part: record}``; None when it carries no nominal ciphertext.
    The caller verified ``raw``; ``document``: its :func:`envelope_document`, if at hand."""
    document = _document(raw) if document is None else document
    taken = {
        name: record
        for name, record in document["parts"].items()
        if _is_nominal(name, record) and "ciphertext" in record
    }
    if not taken:
        return None
    kept = {
        name: {k: v for k, v in record.items() if k not in _SEALED_MEMBERS}
        for name, record in taken.items()
    }
    parts = {**document["parts"], **kept}
    return canonical_json({**document, "parts": parts}), canonical_json(taken)


def nominal_readers(raw: bytes, *, document: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The agencies ``raw`` seals a nominal part to (the block or a nominal file), among those
    still carrying their ciphertext (structure only: for the origin's own copy, which it
    sealed itself); ``document``: its :func:`envelope_document`, if at hand."""
    document = _document(raw) if document is None else document
    nominal = {
        name
        for name, record in document["parts"].items()
        if _is_nominal(name, record) and "ciphertext" in record
    }
    if not nominal:
        return ()
    recipients = document.get("recipients")
    if not isinstance(recipients, list):
        raise Rejected("malformed")
    return tuple(
        str(entry["agency"])
        for entry in recipients
        if isinstance(entry, dict) and nominal & set(entry.get("parts") or ())
    )


def join_nominal(stored: bytes, record: bytes) -> bytes:
    """The envelope ``split_nominal`` took ``record`` from. Each part's hash must match the one
    kept (and signed); verifying the result is still the caller's job. A record kept before
    nominal files were (the ``nominal`` part's record alone) is read as ``{"nominal": record}``."""
    document = _document(stored)
    taken = _object(_parse(record))
    if "ciphertext" in taken:
        taken = {"nominal": taken}
    parts = dict(document["parts"])
    for name, part in taken.items():
        kept = parts.get(name)
        if (
            not isinstance(kept, dict)
            or not isinstance(part, dict)
            or part.get("sha256") != kept.get("sha256")
        ):
            raise Rejected("nominal_mismatch")
        parts[name] = part
    return canonical_json({**document, "parts": parts})


def seal_nominal(
    record: bytes,
    epoch_key: bytes,
    *,
    alert_id: str,
    day: date,
    rng: Callable[[int], bytes] = os.urandom,
) -> SealedNominal:
    """Seal ``record`` under a fresh data key, and wrap that key under ``epoch_key``."""
    data_key = _random(rng, _KEY_LEN)
    nonce = _random(rng, _NONCE_LEN)
    sealed = nonce + AESGCM(data_key).encrypt(nonce, record, _PART_CONTEXT + alert_id.encode())
    return SealedNominal(
        day=day,
        wrapped_key=_wrap(data_key, epoch_key, alert_id, day, rng),
        sealed_part=sealed,
    )


def open_nominal(sealed: SealedNominal, epoch_key: bytes | None, *, alert_id: str) -> bytes:
    """The part record; ``InvalidEnvelope`` (``nominal_erased``) without the epoch key."""
    data_key = _unwrap(sealed, epoch_key, alert_id)
    try:
        return AESGCM(data_key).decrypt(
            sealed.sealed_part[:_NONCE_LEN],
            sealed.sealed_part[_NONCE_LEN:],
            _PART_CONTEXT + alert_id.encode(),
        )
    except (InvalidTag, ValueError):
        raise Rejected("nominal_vault") from None


def seal_nominal_file(
    sealed: SealedNominal,
    epoch_key: bytes | None,
    *,
    alert_id: str,
    part: str,
    data: bytes,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """A nominal file's ciphertext sealed under the data key of its alert's vault row (AAD
    ``blo-exchange/v1/nominal-file\n`` ‖ ``alert_id|part``); ``InvalidEnvelope``
    (``nominal_erased``) once the epoch key is gone."""
    data_key = _unwrap(sealed, epoch_key, alert_id)
    nonce = _random(rng, _NONCE_LEN)
    return nonce + AESGCM(data_key).encrypt(nonce, data, _file_aad(alert_id, part))


def open_nominal_file(
    sealed: SealedNominal, epoch_key: bytes | None, *, alert_id: str, part: str, stored: bytes
) -> bytes:
    """The file's ciphertext as the envelope names it, from what :func:`seal_nominal_file`
    returned; ``InvalidEnvelope`` without the epoch key, or for another alert or part."""
    data_key = _unwrap(sealed, epoch_key, alert_id)
    try:
        return AESGCM(data_key).decrypt(
            stored[:_NONCE_LEN], stored[_NONCE_LEN:], _file_aad(alert_id, part)
        )
    except (InvalidTag, ValueError):
        raise Rejected("nominal_vault") from None


def _file_aad(alert_id: str, part: str) -> bytes:
    return _FILE_CONTEXT + f"{alert_id}|{part}".encode()


def rewrap_nominal(
    sealed: SealedNominal,
    old_key: bytes | None,
    new_key: bytes,
    *,
    alert_id: str,
    day: date,
    rng: Callable[[int], bytes] = os.urandom,
) -> SealedNominal:
    """The same sealed part with its data key wrapped under the epoch key of a later ``day``."""
    data_key = _unwrap(sealed, old_key, alert_id)
    return SealedNominal(
        day=day,
        wrapped_key=_wrap(data_key, new_key, alert_id, day, rng),
        sealed_part=sealed.sealed_part,
    )


def _wrap(
    data_key: bytes, epoch_key: bytes, alert_id: str, day: date, rng: Callable[[int], bytes]
) -> bytes:
    nonce = _random(rng, _NONCE_LEN)
    return nonce + AESGCM(epoch_key).encrypt(nonce, data_key, _wrap_aad(alert_id, day))


def _unwrap(sealed: SealedNominal, epoch_key: bytes | None, alert_id: str) -> bytes:
    if epoch_key is None:
        raise Rejected("nominal_erased")
    try:
        data_key = AESGCM(epoch_key).decrypt(
            sealed.wrapped_key[:_NONCE_LEN],
            sealed.wrapped_key[_NONCE_LEN:],
            _wrap_aad(alert_id, sealed.day),
        )
    except (InvalidTag, ValueError):
        raise Rejected("nominal_vault") from None
    if len(data_key) != _KEY_LEN:
        raise Rejected("nominal_vault")
    return data_key


def _wrap_aad(alert_id: str, day: date) -> bytes:
    return _WRAP_CONTEXT + f"{alert_id}|{day.isoformat()}".encode()


def _parse(raw: bytes) -> Any:
    try:
        return parse_canonical_json(raw)
    except ValueError:
        raise Rejected("malformed") from None


def _document(raw: bytes) -> dict[str, Any]:
    document = _object(_parse(raw))
    if not isinstance(document.get("parts"), dict):
        raise Rejected("malformed")
    return document


def _object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected("malformed")
    return value


def _random(rng: Callable[[int], bytes], size: int) -> bytes:
    data = rng(size)
    if not isinstance(data, bytes) or len(data) != size:
        raise ValueError(f"rng returned other than {size} bytes")
    return data
