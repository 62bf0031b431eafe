"""C2SP tlog-cosignature (Ed25519, timestamped): the bytes signed, the key ID, the line."""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.note import (
    Cosigner,
    NoteError,
    NoteSigner,
    cosignatures,
    format_checkpoint,
    open_checkpoint,
    parse_cosigner_key,
)

ORIGIN = "blo-exchange.example/ledger"
NAME = "blo-karamyk-kg/witness"


def test_a_cosignature_is_the_spec_s_bytes_and_sits_beside_the_log_s_signature() -> None:
    key = SigningKey.generate()
    cosigner = Cosigner.from_signing_key(NAME, key)
    text = format_checkpoint(ORIGIN, 5, b"\x07" * 32)
    line = cosigner.cosign(text, 1_700_000_000)
    name, blob64 = line[len("— ") : -1].split(" ")
    assert name == NAME
    blob = base64.b64decode(blob64)
    public = key.public_bytes()
    assert blob[:4] == hashlib.sha256(NAME.encode() + b"\n\x04" + public).digest()[:4]
    assert int.from_bytes(blob[4:12], "big") == 1_700_000_000
    message = b"cosignature/v1\ntime 1700000000\n" + text.encode()
    Ed25519PublicKey.from_public_bytes(public).verify(blob[12:], message)  # raises if not

    log = NoteSigner.from_signing_key(ORIGIN, SigningKey.generate())
    note = log.sign(text) + line
    assert open_checkpoint(note, [log.verifier()], ORIGIN).size == 5  # the log's still verifies
    vkey = cosigner.verifier().verifier_key_string()
    assert vkey.split("+")[0] == NAME
    (valid,), invalid = cosignatures(note, [parse_cosigner_key(vkey)])
    assert (valid.name, valid.timestamp, invalid) == (NAME, 1_700_000_000, [])

    # Over another checkpoint, or under another timestamp, it does not verify.
    other = log.sign(format_checkpoint(ORIGIN, 6, b"\x07" * 32)) + line
    assert cosignatures(other, [cosigner.verifier()]) == ([], [NAME])
    forged = base64.b64encode(blob[:4] + (1).to_bytes(8, "big") + blob[12:]).decode()
    assert cosignatures(log.sign(text) + f"— {NAME} {forged}\n", [cosigner.verifier()])[1]
    with pytest.raises(NoteError):
        parse_cosigner_key(log.verifier().verifier_key_string())  # a 0x01 key is not a cosigner
