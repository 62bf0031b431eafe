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
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blo_exchange.crypto._envelope_format import (
    NONCE_LEN,
    PART_KEY_LEN,
    PART_NAMES,
    SIGNATURE_CONTEXT,
    VERSION,
    check_header,
    check_structure,
    header_aad,
    hpke_info,
    signed_bytes,
)
from blo_exchange.crypto._fields import (
    ED25519_ALG,
    Rejected,
    expect_b64u,
    expect_object,
    rejection_reason,
)
from blo_exchange.crypto.canonical import (
    b64u_encode,
    canonical_json,
    parse_canonical_json,
    sha256_hex,
)
from blo_exchange.crypto.keys import (
    HpkeSuite,
    KemPrivateKey,
    KemPublicKey,
    SigningKey,
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
    "redact",
    "redact_all",
    "rejection_reason",
    "seal",
]


@dataclass(frozen=True)
class RecipientKey:
    """An agency to seal to, its current HPKE public key, and the parts it may read."""

    agency: str
    key: KemPublicKey
    parts: tuple[str, ...]


@dataclass(frozen=True)
class OpenedEnvelope:
    """Plaintext of the parts the opening agency may read and that were not redacted."""

    header: dict[str, Any]
    parts: dict[str, bytes] = field(repr=False)


def seal(
    header: Mapping[str, Any],
    parts: Mapping[str, bytes],
    recipients: Sequence[RecipientKey],
    signer: SigningKey,
    *,
    rng: Callable[[int], bytes] = os.urandom,
) -> bytes:
    """Encrypt ``parts`` for ``recipients``, sign with ``signer``; return the envelope bytes.

    ``rng`` supplies the part keys and nonces (HPKE's ephemeral keys come from OpenSSL).
    Caller mistakes (a float in the header, an unknown part, a suite mismatch) raise
    ``ValueError``: they are bugs, not bad input from the network.
    """
    # 1. The header must be float-free JSON with the fields the envelope relies on.
    header_doc = parse_canonical_json(canonical_json(header))
    check_header(header_doc)
    suite = HpkeSuite(header_doc["suite"])

    # 2. Parts: known names, bytes, at least one.
    if not parts or not set(parts) <= set(PART_NAMES):
        raise ValueError(f"parts must be a non-empty subset of {PART_NAMES}")
    if not all(isinstance(data, bytes) for data in parts.values()):
        raise ValueError("part plaintexts must be bytes")

    # 3. Recipients: distinct agencies, keys of the header's suite, parts they can be given.
    if not recipients:
        raise ValueError("at least one recipient is required")
    agencies = [recipient.agency for recipient in recipients]
    if len(set(agencies)) != len(agencies) or not all(agencies):
        raise ValueError("recipient agencies must be distinct and non-empty")
    for recipient in recipients:
        if recipient.key.suite is not suite:
            raise ValueError(f"recipient {recipient.agency} has a key for another suite")
        if len(set(recipient.parts)) != len(recipient.parts) or not set(recipient.parts) <= set(
            parts
        ):
            raise ValueError(f"recipient {recipient.agency} parts must be distinct and given")

    # 4. Each part once, under its own fresh key, bound to this header by the AAD. A fresh
    #    key per part is why a 12-byte random nonce can never repeat under one key.
    aad = header_aad(header_doc)
    part_keys: dict[str, bytes] = {}
    part_records: dict[str, dict[str, str]] = {}
    for name in PART_NAMES:
        if name not in parts:
            continue
        key, nonce = _random(rng, PART_KEY_LEN), _random(rng, NONCE_LEN)
        ciphertext = AESGCM(key).encrypt(nonce, parts[name], aad)
        part_keys[name] = key
        part_records[name] = {
            "nonce": b64u_encode(nonce),
            "ciphertext": b64u_encode(ciphertext),
            "sha256": sha256_hex(ciphertext),
        }

    # 5. Each recipient gets the keys of its parts, HPKE-sealed to its key, the info string
    #    naming the alert and the agency so an enc cannot be moved to another alert or agency.
    hpke = hpke_suite(suite)
    recipient_records = []
    for recipient in recipients:
        names = [name for name in PART_NAMES if name in recipient.parts]
        plaintext = canonical_json({name: b64u_encode(part_keys[name]) for name in names})
        enc = hpke.encrypt(
            plaintext,
            recipient.key._hpke_key(),
            info=hpke_info(header_doc["alert_id"], recipient.agency),
        )
        recipient_records.append(
            {
                "agency": recipient.agency,
                "key_id": recipient.key.key_id,
                "parts": names,
                "enc": b64u_encode(enc),
            }
        )

    # 6. Sign the envelope with every part reduced to its hash.
    document: dict[str, Any] = {
        "v": VERSION,
        "header": header_doc,
        "recipients": recipient_records,
        "parts": part_records,
    }
    document["signature"] = {
        "key_id": signer.key_id,
        "alg": ED25519_ALG,
        "sig": b64u_encode(signer.sign(signed_bytes(document))),
    }
    return canonical_json(document)


class UnverifiedEnvelope:
    """An envelope whose structure is checked and nothing else. Do not act on its contents.

    The accessors exist so the caller can pick the keys to verify with (``origin_node``,
    ``signature_key_id``) and name what it rejects (``alert_id``).
    """

    __slots__ = ("_document", "_raw")

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

        return VerifiedEnvelope(raw=self._raw, _document=copy.deepcopy(self._document))

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
        return VerifiedEnvelope(raw=self._raw, _document=copy.deepcopy(self._document))

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

        # 5. Decrypt each readable part still present, bound to this header by the AAD.
        aad = header_aad(header)
        opened: dict[str, bytes] = {}
        for name in PART_NAMES:
            record = document["parts"].get(name)
            if name not in part_keys or record is None or "ciphertext" not in record:
                continue
            try:
                opened[name] = AESGCM(part_keys[name]).decrypt(
                    expect_b64u(record["nonce"]), expect_b64u(record["ciphertext"]), aad
                )
            except (InvalidTag, ValueError):
                raise Rejected("part_decrypt") from None
        return OpenedEnvelope(header=copy.deepcopy(header), parts=opened)

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
    if part not in PART_NAMES:
        raise ValueError(f"unknown part {part!r}")
    document = UnverifiedEnvelope.parse(raw)._document
    parts = copy.deepcopy(document["parts"])
    if part not in parts:
        raise ValueError(f"the envelope has no {part!r} part")
    parts[part] = {"sha256": parts[part]["sha256"]}
    return canonical_json({**document, "parts": parts})


def redact_all(raw: bytes) -> bytes:
    """The envelope with every part's nonce and ciphertext removed (their hashes kept): what
    the ledger keeps of it. Its signature still verifies; nothing in it can be opened."""
    document = UnverifiedEnvelope.parse(raw)._document
    parts = {name: {"sha256": record["sha256"]} for name, record in document["parts"].items()}
    return canonical_json({**document, "parts": parts})


def envelope_sha256(raw: bytes) -> str:
    """Hex SHA-256 of the envelope bytes (one envelope has one encoding: see ``parse``)."""
    return sha256_hex(raw)


def _random(rng: Callable[[int], bytes], size: int) -> bytes:
    data = rng(size)
    if not isinstance(data, bytes) or len(data) != size:
        raise ValueError(f"rng returned other than {size} bytes")
    return data
