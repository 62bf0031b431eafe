"""File parts of an envelope: each attachment under its own key, its ciphertext outside the
envelope and named by the signature (SHA-256 and size), a personal-data file sealed only to
whoever may read the nominal block."""

from __future__ import annotations

import json
import os

import pytest
from tests.unit.crypto.test_crypto_envelope import CASE, CASE_ONLY, FULL, make_header

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import (
    RecipientKey,
    UnverifiedEnvelope,
    redact,
    rejection_reason,
    seal_alert,
)
from blo_exchange.crypto.files import FilePart, SealedAlert
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.errors import InvalidEnvelope

PHOTO = os.urandom(300_000)
PASSPORT = os.urandom(40_000)
SUITE = HpkeSuite.X25519
SIGNER = SigningKey.generate()
KEM = {agency: KemPrivateKey.generate(SUITE) for agency in (FULL, CASE_ONLY)}


def _sealed() -> SealedAlert:
    return seal_alert(
        make_header(SUITE),
        {"case": CASE},
        [
            RecipientKey(FULL, KEM[FULL].public_key(), ("case", "file-1", "file-2")),
            RecipientKey(CASE_ONLY, KEM[CASE_ONLY].public_key(), ("case", "file-1")),
        ],
        SIGNER,
        files=[
            FilePart(card=b'{"name":"photo.jpg"}', data=PHOTO),
            FilePart(card=b'{"name":"passport.jpg"}', data=PASSPORT, nominal=True),
        ],
    )


SEALED = _sealed()


def _open(raw: bytes, agency: str):  # type: ignore[no-untyped-def]
    verified = UnverifiedEnvelope.parse(raw).verify(
        {SIGNER.key_id: SIGNER.verify_key()},
        subject_border_pair="KG-TJ",
        subject_kind="seizure",
        recipient_agency=agency,
    )
    return verified, verified.open(agency, {KEM[agency].key_id: KEM[agency]})


def _reason(action) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidEnvelope) as caught:
        action()
    return rejection_reason(caught.value)


def test_files_open_byte_identical_for_those_sealed_to() -> None:
    verified, opened = _open(SEALED.envelope, FULL)
    assert opened.parts["file-1"] == b'{"name":"photo.jpg"}'
    assert opened.open_file("file-1", SEALED.files["file-1"]) == PHOTO
    assert opened.open_file("file-2", SEALED.files["file-2"]) == PASSPORT
    assert verified.nominal_parts == {"file-2"}
    manifest = verified.files["file-1"]
    assert manifest.size == len(SEALED.files["file-1"]) == len(PHOTO) + 16
    assert not manifest.nominal
    assert verified.files["file-2"].nominal


def test_the_ciphertext_never_holds_the_plaintext_and_keys_differ_per_file() -> None:
    assert PHOTO[:64] not in SEALED.files["file-1"]
    assert len(SEALED.envelope) < 10_000  # the files travel outside the envelope


def test_a_case_only_agency_gets_no_key_for_the_passport_scan() -> None:
    _, opened = _open(SEALED.envelope, CASE_ONLY)
    assert set(opened.files) == {"file-1"}
    assert "file-2" not in opened.parts
    assert _reason(lambda: opened.open_file("file-2", SEALED.files["file-2"])) == (
        "not_a_recipient"
    )


@pytest.mark.parametrize(
    "tamper",
    [
        lambda c: c[:-1],  # truncated
        lambda c: c + b"\0",  # extended
        lambda c: bytes([c[0] ^ 1]) + c[1:],  # a flipped bit
    ],
    ids=["truncated", "extended", "flipped"],
)
def test_a_changed_object_is_refused(tamper) -> None:  # type: ignore[no-untyped-def]
    _, opened = _open(SEALED.envelope, FULL)
    assert _reason(lambda: opened.open_file("file-1", tamper(SEALED.files["file-1"]))) == (
        "file_hash"
    )


def test_one_files_object_swapped_for_another_is_refused() -> None:
    _, opened = _open(SEALED.envelope, FULL)
    assert _reason(lambda: opened.open_file("file-1", SEALED.files["file-2"])) == "file_hash"
    other = _sealed()  # same plaintext, another alert's key: its object is not this one
    assert _reason(lambda: opened.open_file("file-1", other.files["file-1"])) == "file_hash"


@pytest.mark.parametrize("field", ["sha256", "size", "class"])
def test_the_manifest_is_signed(field: str) -> None:
    document = json.loads(SEALED.envelope)
    record = document["parts"]["file-1"]
    if field == "class":
        record["class"] = "nominal"
    elif field == "size":
        record["file"]["size"] += 1
    else:
        record["file"]["sha256"] = "0" * 64
    assert _reason(lambda: _open(canonical_json(document), FULL)) == "bad_signature"


def test_a_redacted_file_card_still_verifies_and_its_file_still_opens() -> None:
    raw = redact(SEALED.envelope, "file-2")
    _, opened = _open(raw, FULL)
    assert "file-2" not in opened.parts
    assert opened.open_file("file-2", SEALED.files["file-2"]) == PASSPORT


def test_bad_file_parts_are_malformed() -> None:
    document = json.loads(SEALED.envelope)
    document["parts"]["file-17"] = document["parts"].pop("file-2")
    assert _reason(lambda: UnverifiedEnvelope.parse(canonical_json(document))) == "malformed"
    document = json.loads(SEALED.envelope)
    del document["parts"]["file-1"]["class"]
    assert _reason(lambda: UnverifiedEnvelope.parse(canonical_json(document))) == "malformed"
