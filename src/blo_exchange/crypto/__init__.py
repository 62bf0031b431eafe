"""Cryptography for blo-exchange: canonical JSON, keys, the alert envelope and receipts.

The only package that imports ``cryptography``. Every way an envelope or receipt can be
bad raises :class:`~blo_exchange.errors.InvalidEnvelope`.
"""

from __future__ import annotations

from blo_exchange.crypto.canonical import (
    b64u_decode,
    b64u_encode,
    canonical_json,
    parse_canonical_json,
    sha256_hex,
)
from blo_exchange.crypto.envelope import (
    PART_NAMES,
    SIGNATURE_CONTEXT,
    OpenedEnvelope,
    RecipientKey,
    UnverifiedEnvelope,
    VerifiedEnvelope,
    envelope_sha256,
    redact,
    rejection_reason,
    seal,
)
from blo_exchange.crypto.keys import (
    HpkeSuite,
    KemPrivateKey,
    KemPublicKey,
    SigningKey,
    VerifyKey,
    hpke_suite,
    key_id_for,
    load_kem_key,
    load_private_key,
    load_signing_key,
    public_key_from_record,
    public_key_record,
    save_private_key,
)
from blo_exchange.crypto.receipt import (
    RECEIPT_CONTEXT,
    UnverifiedReceipt,
    VerifiedReceipt,
    sign_receipt,
)

__all__ = [
    "PART_NAMES",
    "RECEIPT_CONTEXT",
    "SIGNATURE_CONTEXT",
    "HpkeSuite",
    "KemPrivateKey",
    "KemPublicKey",
    "OpenedEnvelope",
    "RecipientKey",
    "SigningKey",
    "UnverifiedEnvelope",
    "UnverifiedReceipt",
    "VerifiedEnvelope",
    "VerifiedReceipt",
    "VerifyKey",
    "b64u_decode",
    "b64u_encode",
    "canonical_json",
    "envelope_sha256",
    "hpke_suite",
    "key_id_for",
    "load_kem_key",
    "load_private_key",
    "load_signing_key",
    "parse_canonical_json",
    "public_key_from_record",
    "public_key_record",
    "redact",
    "rejection_reason",
    "save_private_key",
    "seal",
    "sha256_hex",
    "sign_receipt",
]
