"""The alert envelope (docs/contracts/envelope.md): seal, parse, verify, open, redact.

A sender encrypts each part (``case``, ``nominal``) once under its own AES-256-GCM key,
seals to every recipient agency the keys of the parts it may read with HPKE (RFC 9180),
and signs the whole with its node's Ed25519 key. The signature covers every part by the
SHA-256 of its ciphertext only, so a relay may strip a part (:func:`redact`) and the rest
still verifies.

The types say how far a message got: :class:`UnverifiedEnvelope` (parsed, nothing
trusted) -> :meth:`~UnverifiedEnvelope.verify` -> :class:`VerifiedEnvelope` (signed by a
key the caller trusts, addressed to the caller) -> :meth:`~VerifiedEnvelope.open` ->
:class:`OpenedEnvelope` (plaintext). Every failure on the way is the same opaque
:class:`~blo_exchange.errors.InvalidEnvelope`; :func:`rejection_reason` gives a short
reason for metrics.

Not here: which signing keys are current or revoked, replay and duplicate detection,
sharing policy. The caller decides those and passes only the keys it trusts.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blo_exchange.crypto._envelope_format import (
    PART_KEY_LEN,
    PART_NAMES,
    SIGNATURE_CONTEXT,
    check_structure,
    file_aad,
    file_part_name,
    header_aad,
    hpke_info,
    is_file_part,
    part_order,
    signed_bytes,
)
from blo_exchange.crypto._fields import (
    Rejected,
    expect_b64u,
    expect_object,
    rejection_reason,
)
from blo_exchange.crypto._seal import RecipientKey, seal, seal_alert
from blo_exchange.crypto.canonical import (
    canonical_json,
    parse_canonical_json,
    sha256_hex,
)
from blo_exchange.crypto.files import FileManifest, open_file_ciphertext
from blo_exchange.crypto.keys import (
    HpkeSuite,
    KemPrivateKey,
    VerifyKey,
    hpke_suite,
)
from blo_exchange.errors import InvalidEnvelope

__all__ = [
    "PART_NAMES",
    "SIGNATURE_CONTEXT",
    "OpenedEnvelope",
    "RecipientKey",
    "UnverifiedEnvelope",
    "VerifiedEnvelope",
    "envelope_sha256",
    "file_part_name",
    "redact",
    "redact_all",
    "rejection_reason",
    "seal",
    "seal_alert",
]


@dataclass(frozen=True)
class OpenedEnvelope:
    """Plaintext of the parts the opening agency may read and that were not redacted (for a
    file part, its card); and what opens the files it may read."""

    header: dict[str, Any]
    parts: dict[str, bytes] = field(repr=False)
    files: dict[str, FileManifest] = field(default_factory=dict)
    """The signed manifests of the file parts this agency may read."""
    _file_keys: dict[str, bytes] = field(default_factory=dict, repr=False)

    def open_file(self, part: str, ciphertext: bytes) -> bytes:
        """The file of ``part`` from its fetched ciphertext, checked against the signed size and
        hash; ``InvalidEnvelope`` if it is not that file or ``part`` is not readable here."""
        manifest, key = self.files.get(part), self._file_keys.get(part)
        if manifest is None or key is None:
            raise Rejected("not_a_recipient")
        return open_file_ciphertext(manifest, key, ciphertext, file_aad(self.header, part, "data"))


class UnverifiedEnvelope:
    """An envelope whose structure is checked and nothing else. Do not act on its contents.

    The accessors exist so the caller can pick the keys to verify with (``origin_node``,
    ``signature_key_id``) and name what it rejects (``alert_id``).
    """

    __slots__ = ("_document", "_raw")
    # The parsed document is read, never changed, here and in the VerifiedEnvelope that shares
    # it (a copy cost more than the rest of a verification): what either hands out is a copy
    # (``header``) or built anew.

    def __init__(self, raw: bytes) -> None:
        """Same as :meth:`parse`."""
        try:
            document = parse_canonical_json(raw)
            check_structure(document)
        except (ValueError, TypeError, KeyError):
            raise Rejected("malformed") from None
        self._raw = bytes(raw)
        self._document: dict[str, Any] = document

    @classmethod
    def parse(cls, raw: bytes) -> UnverifiedEnvelope:
        """Check ``raw`` is a well-formed envelope; ``InvalidEnvelope`` otherwise."""
        return cls(raw)

    @property
    def raw(self) -> bytes:
        return self._raw

    @property
    def header(self) -> dict[str, Any]:
        return copy.deepcopy(self._document["header"])

    @property
    def alert_id(self) -> str:
        return str(self._document["header"]["alert_id"])

    @property
    def kind(self) -> str:
        return str(self._document["header"]["kind"])

    @property
    def border_pair(self) -> str:
        return str(self._document["header"]["border_pair"])

    @property
    def origin_node(self) -> str:
        return str(self._document["header"]["origin_node"])

    @property
    def origin_agency(self) -> str:
        return str(self._document["header"]["origin_agency"])

    @property
    def suite(self) -> HpkeSuite:
        return HpkeSuite(self._document["header"]["suite"])

    @property
    def signature_key_id(self) -> str:
        return str(self._document["signature"]["key_id"])

    @property
    def recipient_agencies(self) -> tuple[str, ...]:
        """Agencies named in ``recipients``, unverified: only for deciding whether to look."""
        return tuple(entry["agency"] for entry in self._document["recipients"])

    def verify(
        self,
        keys: Mapping[str, VerifyKey],
        *,
        subject_border_pair: str,
        subject_kind: str,
        recipient_agency: str,
    ) -> VerifiedEnvelope:
        """Check the envelope as docs/contracts/envelope.md says, in that order.

        ``keys`` must hold only the known, unrevoked keys of this envelope's origin node, by
        key id: that is what ties the signature to ``origin_node``. Not checked here:
        revocation, freshness, duplicates (``alert_id``), sharing policy.
        """
        self._check_signed(keys, subject_border_pair, subject_kind)

        # 5. The receiver is a named recipient; a validly signed envelope forwarded to
        #    someone else (surreptitious forwarding) stops here.
        if recipient_agency not in self.recipient_agencies:
            raise Rejected("not_a_recipient")

        return VerifiedEnvelope(raw=self._raw, _document=self._document)

    def verify_signature_only(
        self,
        keys: Mapping[str, VerifyKey],
        *,
        subject_border_pair: str,
        subject_kind: str,
    ) -> VerifiedEnvelope:
        """Steps 1-4 of :meth:`verify`, for a holder of no agency key (the ledger writer).

        The recipient check (step 5) is skipped because there is no receiving agency;
        :meth:`VerifiedEnvelope.open` still refuses any agency the envelope does not list.
        """
        self._check_signed(keys, subject_border_pair, subject_kind)
        return VerifiedEnvelope(raw=self._raw, _document=self._document)

    def _check_signed(
        self, keys: Mapping[str, VerifyKey], subject_border_pair: str, subject_kind: str
    ) -> None:
        document = self._document
        signature = document["signature"]

        # 1. The signing key is one the caller trusts for the origin node.
        key = keys.get(signature["key_id"])
        if key is None or key.key_id != signature["key_id"]:
            raise Rejected("unknown_key")

        # 2. The signature is valid over the context string and the hash-reduced envelope.
        try:
            key.verify(expect_b64u(signature["sig"]), signed_bytes(document))
        except (InvalidEnvelope, ValueError):
            raise Rejected("bad_signature") from None

        # 3. Every part still present is the ciphertext the signature names by hash.
        for record in document["parts"].values():
            if "ciphertext" in record and (
                sha256_hex(expect_b64u(record["ciphertext"])) != record["sha256"]
            ):
                raise Rejected("part_hash")

        # 4. The subject it came on says the same as the signed header, so a message cannot
        #    be replayed onto another border pair's or kind's subject.
        header = document["header"]
        if header["border_pair"] != subject_border_pair or header["kind"] != subject_kind:
            raise Rejected("subject_mismatch")


@dataclass(frozen=True)
class VerifiedEnvelope:
    """An envelope signed by a trusted key, its parts intact, its subject right.

    Built only by :meth:`UnverifiedEnvelope.verify` (which also checked the verifying agency
    is a recipient) or :meth:`UnverifiedEnvelope.verify_signature_only`.
    """

    raw: bytes = field(repr=False)
    _document: dict[str, Any] = field(repr=False, compare=False)

    @property
    def header(self) -> dict[str, Any]:
        return copy.deepcopy(self._document["header"])

    @property
    def alert_id(self) -> str:
        return str(self._document["header"]["alert_id"])

    @property
    def signature_key_id(self) -> str:
        return str(self._document["signature"]["key_id"])

    @property
    def recipients(self) -> list[str]:
        """Agency ids, in envelope order."""
        return [entry["agency"] for entry in self._document["recipients"]]

    @property
    def redacted_parts(self) -> tuple[str, ...]:
        """Parts whose ciphertext was removed in transit."""
        return tuple(
            name for name, record in self._document["parts"].items() if "ciphertext" not in record
        )

    @property
    def files(self) -> dict[str, FileManifest]:
        """Every file part's signed manifest, by part name."""
        return {
            name: _manifest(name, record)
            for name, record in self._document["parts"].items()
            if is_file_part(name)
        }

    @property
    def nominal_parts(self) -> frozenset[str]:
        """The parts that are personal data: ``nominal`` and the files of class nominal."""
        return frozenset(
            name
            for name, record in self._document["parts"].items()
            if name == "nominal" or record.get("class") == "nominal"
        )

    def redacted_all(self) -> bytes:
        """:func:`redact_all` of this envelope, without parsing it again."""
        return _redacted_all(self._document)

    def recipient_parts(self, agency: str) -> tuple[str, ...]:
        """The parts ``agency`` may read; ``InvalidEnvelope`` if it is not a recipient."""
        return tuple(self._recipient(agency)["parts"])

    def open(self, agency: str, keys: Mapping[str, KemPrivateKey]) -> OpenedEnvelope:
        """Decrypt the parts ``agency`` may read, with its private keys by key id."""
        document = self._document
        header = document["header"]

        # 1. The agency has an entry.
        entry = self._recipient(agency)

        # 2. It holds the private key the entry was sealed to, in the envelope's suite.
        key = keys.get(entry["key_id"])
        if key is None or key.key_id != entry["key_id"] or key.suite.value != header["suite"]:
            raise Rejected("no_private_key")

        # 3. HPKE-open the part keys; the info binds them to this alert and this agency.
        try:
            plaintext = hpke_suite(key.suite).decrypt(
                expect_b64u(entry["enc"]),
                key._hpke_key(),
                info=hpke_info(header["alert_id"], agency),
            )
        except Exception:  # pyca raises several types here; all mean the same to us
            raise Rejected("hpke") from None

        # 4. Exactly the entry's parts, each a 32-byte key.
        try:
            encoded = expect_object(parse_canonical_json(plaintext), frozenset(entry["parts"]))
            part_keys = {
                name: expect_b64u(value, length=PART_KEY_LEN) for name, value in encoded.items()
            }
        except (ValueError, TypeError):
            raise Rejected("hpke") from None

        # 5. Decrypt each readable part still present, bound to this header by the AAD (a file
        #    part's card also to its part name). A file itself is opened once fetched.
        opened: dict[str, bytes] = {}
        bound = header_aad(header)
        for name in sorted(part_keys, key=part_order):
            record = document["parts"].get(name)
            if record is None or "ciphertext" not in record:
                continue
            aad = file_aad(header, name, "card", bound=bound) if is_file_part(name) else bound
            try:
                opened[name] = AESGCM(part_keys[name]).decrypt(
                    expect_b64u(record["nonce"]), expect_b64u(record["ciphertext"]), aad
                )
            except (InvalidTag, ValueError):
                raise Rejected("part_decrypt") from None
        files = {name: m for name, m in self.files.items() if name in part_keys}
        return OpenedEnvelope(
            header=copy.deepcopy(header),
            parts=opened,
            files=files,
            _file_keys={name: part_keys[name] for name in files},
        )

    def _recipient(self, agency: str) -> dict[str, Any]:
        for entry in self._document["recipients"]:
            if entry["agency"] == agency:
                return dict(entry)
        raise Rejected("not_a_recipient")


def redact(raw: bytes, part: str) -> bytes:
    """Remove ``part``'s nonce and ciphertext, keeping its hash; the result still verifies.

    Does not verify the envelope (a relay need not hold keys); ``InvalidEnvelope`` if it is
    malformed, ``ValueError`` if ``part`` is not one of its parts.
    """
    if part not in PART_NAMES and not is_file_part(part):
        raise ValueError(f"unknown part {part!r}")
    document = UnverifiedEnvelope.parse(raw)._document
    parts = copy.deepcopy(document["parts"])
    if part not in parts:
        raise ValueError(f"the envelope has no {part!r} part")
    parts[part] = _redacted(parts[part])
    return canonical_json({**document, "parts": parts})


def redact_all(raw: bytes) -> bytes:
    """The envelope with every part's nonce and ciphertext removed (their hashes kept): what
    the ledger keeps of it. Its signature still verifies; nothing in it can be opened."""
    return _redacted_all(UnverifiedEnvelope.parse(raw)._document)


def _redacted_all(document: Mapping[str, Any]) -> bytes:
    parts = {name: _redacted(record) for name, record in document["parts"].items()}
    return canonical_json({**document, "parts": parts})


def _redacted(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in ("nonce", "ciphertext")}


def _manifest(name: str, record: Mapping[str, Any]) -> FileManifest:
    file = record["file"]
    return FileManifest(
        part=name,
        sha256=file["sha256"],
        size=file["size"],
        nominal=record["class"] == "nominal",
        nonce=expect_b64u(file["nonce"]),
    )


def envelope_sha256(raw: bytes) -> str:
    """Hex SHA-256 of the envelope bytes (one envelope has one encoding: see ``parse``)."""
    return sha256_hex(raw)
