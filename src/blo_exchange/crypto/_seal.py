"""Sealing an envelope (docs/contracts/envelope.md): private to ``envelope``, which exports
:func:`seal` and :func:`seal_alert`. Every part under its own key, the keys HPKE-sealed per
recipient, the whole signed by the origin node."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from blo_exchange.crypto._envelope_format import (
    NONCE_LEN,
    PART_KEY_LEN,
    PART_NAMES,
    VERSION,
    check_header,
    file_aad,
    file_part_name,
    header_aad_of,
    hpke_info,
    part_order,
    signed_bytes_of,
)
from blo_exchange.crypto._fields import ED25519_ALG
from blo_exchange.crypto.canonical import (
    b64u_encode,
    canonical_json,
    canonical_object,
    sha256_hex,
)
from blo_exchange.crypto.files import FilePart, SealedAlert
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, SigningKey, hpke_suite

__all__ = ["RecipientKey", "seal", "seal_alert"]


@dataclass(frozen=True)
class RecipientKey:
    """An agency to seal to, its current HPKE public key, and the parts it may read."""

    agency: str
    key: KemPublicKey
    parts: tuple[str, ...]


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
    return seal_alert(header, parts, recipients, signer, rng=rng).envelope


def seal_alert(
    header: Mapping[str, Any],
    parts: Mapping[str, bytes],
    recipients: Sequence[RecipientKey],
    signer: SigningKey,
    *,
    files: Sequence[FilePart] = (),
    rng: Callable[[int], bytes] = os.urandom,
) -> SealedAlert:
    """:func:`seal` with attachments: ``files`` become parts ``file-1``, ``file-2``... (name
    them in a recipient's ``parts`` to give it the file); their ciphertexts come back beside
    the envelope, which names each by SHA-256 and size."""
    # 1. The header must be float-free JSON with the fields the envelope relies on. Its
    #    canonical bytes are made once: bound as every part's AAD, signed and published as they
    #    are (canonical_object). What canonical_json accepts, it wrote canonical: read back as
    #    plain JSON, it is the document every reader parses from the envelope.
    header_bytes = canonical_json(header)
    header_doc = json.loads(header_bytes)
    check_header(header_doc)
    suite = HpkeSuite(header_doc["suite"])

    # 2. Parts: known names, bytes, at least one.
    if not parts or not set(parts) <= set(PART_NAMES):
        raise ValueError(f"parts must be a non-empty subset of {PART_NAMES}")
    if not all(isinstance(data, bytes) for data in parts.values()):
        raise ValueError("part plaintexts must be bytes")
    file_names = {file_part_name(i + 1): file for i, file in enumerate(files)}
    all_names = sorted([*parts, *file_names], key=part_order)

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
            all_names
        ):
            raise ValueError(f"recipient {recipient.agency} parts must be distinct and given")

    # 4. Each part once, under its own fresh key, bound to this header by the AAD. A fresh
    #    key per part is why a 12-byte random nonce can never repeat under one key. A file
    #    part's key seals its card and its file, each with its own nonce and AAD.
    aad = header_aad_of(header_bytes)
    part_keys: dict[str, bytes] = {}
    part_records: dict[str, dict[str, Any]] = {}
    file_ciphertexts: dict[str, bytes] = {}
    for name in all_names:
        key, nonce = _random(rng, PART_KEY_LEN), _random(rng, NONCE_LEN)
        part_keys[name] = key
        file = file_names.get(name)
        if file is None:
            ciphertext = AESGCM(key).encrypt(nonce, parts[name], aad)
            part_records[name] = _part_record(nonce, ciphertext)
            continue
        card = AESGCM(key).encrypt(nonce, file.card, file_aad(header_doc, name, "card", bound=aad))
        file_nonce = _random(rng, NONCE_LEN)
        data = AESGCM(key).encrypt(
            file_nonce, file.data, file_aad(header_doc, name, "data", bound=aad)
        )
        file_ciphertexts[name] = data
        part_records[name] = {
            **_part_record(nonce, card),
            "class": "nominal" if file.nominal else "case",
            "file": {
                "nonce": b64u_encode(file_nonce),
                "sha256": sha256_hex(data),
                "size": len(data),
            },
        }

    # 5. Each recipient gets the keys of its parts, HPKE-sealed to its key, the info string
    #    naming the alert and the agency so an enc cannot be moved to another alert or agency.
    hpke = hpke_suite(suite)
    recipient_records = []
    for recipient in recipients:
        names = [name for name in all_names if name in recipient.parts]
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

    # 6. Sign the envelope with every part reduced to its hash (and a file part's manifest).
    #    The header's and the recipients' bytes are made once, for the signature and the
    #    envelope both.
    recipients_bytes = canonical_json(recipient_records)
    signature = {
        "key_id": signer.key_id,
        "alg": ED25519_ALG,
        "sig": b64u_encode(
            signer.sign(signed_bytes_of(VERSION, header_bytes, recipients_bytes, part_records))
        ),
    }
    envelope = canonical_object(
        {
            "v": canonical_json(VERSION),
            "header": header_bytes,
            "recipients": recipients_bytes,
            "parts": canonical_json(part_records),
            "signature": canonical_json(signature),
        }
    )
    return SealedAlert(envelope=envelope, files=file_ciphertexts)


def _part_record(nonce: bytes, ciphertext: bytes) -> dict[str, str]:
    return {
        "nonce": b64u_encode(nonce),
        "ciphertext": b64u_encode(ciphertext),
        "sha256": sha256_hex(ciphertext),
    }


def _random(rng: Callable[[int], bytes], size: int) -> bytes:
    data = rng(size)
    if not isinstance(data, bytes) or len(data) != size:
        raise ValueError(f"rng returned other than {size} bytes")
    return data
