"""Signed receipts: round trip, tampering, wrong keys, and separation from envelopes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from blo_exchange.crypto.canonical import b64u_decode, b64u_encode, canonical_json
from blo_exchange.crypto.envelope import SIGNATURE_CONTEXT, rejection_reason
from blo_exchange.crypto.keys import SigningKey, VerifyKey
from blo_exchange.crypto.receipt import (
    RECEIPT_CONTEXT,
    UnverifiedReceipt,
    sign_receipt,
)
from blo_exchange.errors import InvalidEnvelope

BODY: dict[str, Any] = {
    "receipt_id": "r-0001",
    "type": "delivered",
    "node": "blo-khujand-tj",
    "agency": "tj-drug-control-agency",
    "alert_id": "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
    "border_pair": "KG-TJ",
    "envelope_sha256": "ab" * 32,
    "occurred_at": "2026-11-28T06:41:00Z",
    "detail": {"stream_seq": 42},
}


@pytest.fixture(scope="module")
def signer() -> SigningKey:
    return SigningKey.generate()


@pytest.fixture(scope="module")
def receipt(signer: SigningKey) -> bytes:
    return sign_receipt(BODY, signer)


def _keys(signer: SigningKey) -> dict[str, VerifyKey]:
    return {signer.key_id: signer.verify_key()}


def test_round_trip(signer: SigningKey, receipt: bytes) -> None:
    unverified = UnverifiedReceipt.parse(receipt)
    assert unverified.node == "blo-khujand-tj"
    assert unverified.signature_key_id == signer.key_id
    assert unverified.body == BODY
    verified = unverified.verify(_keys(signer))
    assert verified.body == BODY
    assert verified.raw == receipt


def test_layout(signer: SigningKey, receipt: bytes) -> None:
    document = json.loads(receipt)
    assert receipt == canonical_json(document)
    assert document["v"] == 1
    assert document["receipt"] == BODY
    assert document["signature"]["alg"] == "Ed25519"
    signer.verify_key().verify(
        b64u_decode(document["signature"]["sig"]), RECEIPT_CONTEXT + canonical_json(BODY)
    )


def test_body_copy_is_independent(receipt: bytes) -> None:
    unverified = UnverifiedReceipt.parse(receipt)
    unverified.body["detail"]["stream_seq"] = 0
    assert unverified.body["detail"]["stream_seq"] == 42


def _document(receipt: bytes) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(receipt)
    return document


@pytest.mark.parametrize("field", sorted(BODY))
def test_changed_body_field_is_rejected(signer: SigningKey, receipt: bytes, field: str) -> None:
    document = _document(receipt)
    value = document["receipt"][field]
    document["receipt"][field] = {"stream_seq": 43} if isinstance(value, dict) else value + "x"
    with pytest.raises(InvalidEnvelope):
        UnverifiedReceipt.parse(canonical_json(document)).verify(_keys(signer))


def test_flipped_signature_bit_is_rejected(signer: SigningKey, receipt: bytes) -> None:
    document = _document(receipt)
    sig = bytearray(b64u_decode(document["signature"]["sig"]))
    sig[0] ^= 0x01
    document["signature"]["sig"] = b64u_encode(bytes(sig))
    with pytest.raises(InvalidEnvelope) as caught:
        UnverifiedReceipt.parse(canonical_json(document)).verify(_keys(signer))
    assert rejection_reason(caught.value) == "bad_signature"


def test_a_bit_flipped_anywhere_is_rejected(signer: SigningKey, receipt: bytes) -> None:
    for index in range(len(receipt)):
        raw = bytearray(receipt)
        raw[index] ^= 0x01
        with pytest.raises(InvalidEnvelope):
            UnverifiedReceipt.parse(bytes(raw)).verify(_keys(signer))


def test_wrong_key_under_same_key_id_is_rejected(signer: SigningKey, receipt: bytes) -> None:
    impostor = VerifyKey(signer.key_id, SigningKey.generate().public_bytes())
    with pytest.raises(InvalidEnvelope) as caught:
        UnverifiedReceipt.parse(receipt).verify({signer.key_id: impostor})
    assert rejection_reason(caught.value) == "bad_signature"


def test_unknown_key_is_rejected(receipt: bytes) -> None:
    other = SigningKey.generate()
    with pytest.raises(InvalidEnvelope) as caught:
        UnverifiedReceipt.parse(receipt).verify(_keys(other))
    assert rejection_reason(caught.value) == "unknown_key"


def test_envelope_context_signature_is_not_a_receipt_signature(signer: SigningKey) -> None:
    document = {
        "v": 1,
        "receipt": BODY,
        "signature": {
            "key_id": signer.key_id,
            "alg": "Ed25519",
            "sig": b64u_encode(signer.sign(SIGNATURE_CONTEXT + canonical_json(BODY))),
        },
    }
    with pytest.raises(InvalidEnvelope):
        UnverifiedReceipt.parse(canonical_json(document)).verify(_keys(signer))


@pytest.mark.parametrize(
    "raw",
    [
        b"\xff",
        b"[]",
        b"{}",
        canonical_json({"v": 2, "receipt": BODY, "signature": {}}),
        canonical_json({"v": 1, "receipt": {"type": "delivered"}, "signature": {}}),
    ],
)
def test_malformed_receipts(raw: bytes) -> None:
    with pytest.raises(InvalidEnvelope) as caught:
        UnverifiedReceipt.parse(raw)
    assert rejection_reason(caught.value) == "malformed"
    assert str(caught.value) == "invalid receipt"


def test_sign_receipt_refuses_bad_bodies(signer: SigningKey) -> None:
    with pytest.raises(ValueError, match="float"):
        sign_receipt(BODY | {"latency": 0.25}, signer)
    with pytest.raises(ValueError, match="non-empty string"):
        sign_receipt({"type": "delivered"}, signer)
