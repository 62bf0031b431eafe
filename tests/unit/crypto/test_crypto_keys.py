"""Keys: stable ids, key files (0600, atomic, checked on load), directory records."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import mlkem

from blo_exchange.crypto.canonical import b64u_encode
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
from blo_exchange.errors import ConfigurationError, InvalidEnvelope

SUITES = list(HpkeSuite)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    # A umask of 0 would let a careless writer create 0666 files; the writer must not care.
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_key_id_is_first_32_hex_of_labelled_sha256() -> None:
    public = bytes(range(32))
    expected = hashlib.sha256(b"ed25519\n" + public).hexdigest()[:32]
    assert key_id_for("ed25519", public) == expected
    assert key_id_for("ed25519", public) == key_id_for("ed25519", bytes(public))
    assert key_id_for(HpkeSuite.X25519.value, public) != expected


def test_signing_key_id_is_stable_and_derived_from_public() -> None:
    key = SigningKey.generate()
    assert key.key_id == key_id_for("ed25519", key.public_bytes())
    assert SigningKey.from_private_bytes(key.private).key_id == key.key_id
    assert VerifyKey.from_public_bytes(key.public_bytes()) == key.verify_key()


@pytest.mark.parametrize("suite", SUITES)
def test_kem_key_id_is_stable_and_derived_from_public(suite: HpkeSuite) -> None:
    key = KemPrivateKey.generate(suite)
    public = key.public_key()
    assert public.key_id == key.key_id == key_id_for(suite.value, public.public)
    assert KemPrivateKey.from_private_bytes(suite, key.private) == key


def test_hybrid_key_layout() -> None:
    key = KemPrivateKey.generate(HpkeSuite.MLKEM768_X25519)
    assert len(key.private) == 64 + 32
    assert len(key.public_key().public) == 1184 + 32


def test_sign_and_verify() -> None:
    key = SigningKey.generate()
    signature = key.sign(b"data")
    assert len(key.public_bytes()) == 32
    key.verify_key().verify(signature, b"data")
    with pytest.raises(InvalidEnvelope):
        key.verify_key().verify(signature, b"datA")


@pytest.mark.parametrize("public", [b"", bytes(31), bytes(33)])
def test_verify_with_malformed_public_key_is_invalid_envelope(public: bytes) -> None:
    signature = SigningKey.generate().sign(b"data")
    with pytest.raises(InvalidEnvelope):
        VerifyKey(key_id="x", public=public).verify(signature, b"data")


def test_private_material_not_in_repr() -> None:
    signing = SigningKey.generate()
    kem = KemPrivateKey.generate(HpkeSuite.X25519)
    assert signing.private.hex() not in repr(signing)
    assert "private" not in repr(kem)


def test_hpke_suite_mapping_accepts_the_wire_string() -> None:
    key = KemPrivateKey.generate(HpkeSuite.MLKEM768_X25519)
    suite = hpke_suite(HpkeSuite("MLKEM768-X25519/HKDF-SHA256/AES-256-GCM"))
    enc = suite.encrypt(b"x", key.public_key()._hpke_key(), info=b"i")
    assert len(enc) == hpke.KEM.MLKEM768_X25519.enc_length() + 1 + 16
    assert suite.decrypt(enc, key._hpke_key(), info=b"i") == b"x"


@pytest.mark.parametrize("suite", SUITES)
def test_kem_public_from_bytes(suite: HpkeSuite) -> None:
    public = KemPrivateKey.generate(suite).public_key()
    assert KemPublicKey.from_bytes(suite.value, public.public, key_id=public.key_id) == public
    with pytest.raises(ValueError, match="key_id"):
        KemPublicKey.from_bytes(suite, public.public, key_id="0" * 32)
    with pytest.raises(ValueError, match="bytes"):
        KemPublicKey.from_bytes(suite, public.public[:-1])
    with pytest.raises(ValueError, match="bytes"):
        KemPublicKey.from_bytes(suite, public.public + b"\0")


def test_a_kem_public_key_is_parsed_once_per_key_object(monkeypatch: pytest.MonkeyPatch) -> None:
    suite = HpkeSuite.MLKEM768_X25519
    public = KemPrivateKey.generate(suite).public_key()
    parsed: list[bytes] = []
    parse = mlkem.MLKEM768PublicKey.from_public_bytes

    def counted(data: bytes) -> mlkem.MLKEM768PublicKey:
        parsed.append(data)
        return parse(data)

    monkeypatch.setattr(mlkem.MLKEM768PublicKey, "from_public_bytes", counted)
    key = KemPublicKey(key_id=public.key_id, suite=suite, public=public.public)
    first = key._hpke_key()
    assert key._hpke_key() is first
    assert len(parsed) == 1
    # Another object of the same bytes parses its own: nothing is shared through equality.
    KemPublicKey(key_id=public.key_id, suite=suite, public=public.public)._hpke_key()
    assert len(parsed) == 2


def test_a_kem_public_key_of_bad_bytes_is_refused_when_used() -> None:
    # Coefficients of 0xFFF are past the modulus: the bytes have the length, not the form.
    public = b"\xff" * 1184 + bytes(32)
    bad = KemPublicKey(key_id="0" * 32, suite=HpkeSuite.MLKEM768_X25519, public=public)
    for _ in range(2):  # a failed parse is not kept: the second use is refused too
        with pytest.raises(ValueError, match="ML-KEM-768 public key"):
            bad._hpke_key()
    with pytest.raises(ValueError, match="ML-KEM-768 public key"):
        KemPublicKey.from_bytes(HpkeSuite.MLKEM768_X25519, public)


def test_kem_public_unknown_suite() -> None:
    with pytest.raises(ValueError, match="is not a valid HpkeSuite"):
        KemPublicKey.from_bytes("X448/HKDF-SHA512/AES-256-GCM", bytes(56))


@pytest.mark.parametrize("suite", SUITES)
def test_public_key_records_round_trip(suite: HpkeSuite) -> None:
    kem = KemPrivateKey.generate(suite)
    signing = SigningKey.generate()
    kem_record = public_key_record(kem)
    assert kem_record == {
        "key_id": kem.key_id,
        "alg": suite.value,
        "public": b64u_encode(kem.public_key().public),
    }
    signing_record = public_key_record(signing)
    assert signing_record["alg"] == "Ed25519"
    assert public_key_from_record(kem_record) == kem.public_key()
    assert public_key_from_record(signing_record) == signing.verify_key()
    assert public_key_record(signing.verify_key()) == signing_record
    with pytest.raises(ValueError, match="key_id"):
        public_key_from_record({**signing_record, "key_id": kem.key_id})


@pytest.mark.parametrize(
    "make", [SigningKey.generate, lambda: KemPrivateKey.generate(HpkeSuite.MLKEM768_X25519)]
)
@pytest.mark.usefixtures("permissive_umask")
def test_key_file_is_0600_and_loads_back(tmp_path: Path, make: object) -> None:
    key = make()  # type: ignore[operator]
    path = tmp_path / "node.key"
    save_private_key(path, key)
    assert _mode(path) == 0o600
    assert load_private_key(path) == key
    assert load_private_key(path).key_id == key.key_id
    assert os.listdir(tmp_path) == ["node.key"]  # no temporary file left behind
    document = json.loads(path.read_text())
    assert set(document) == {"type", "suite", "key_id", "private"}


def test_key_file_overwrite_keeps_0600(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    save_private_key(path, SigningKey.generate())
    second = SigningKey.generate()
    save_private_key(path, second)
    assert _mode(path) == 0o600
    assert load_signing_key(path) == second


def test_typed_loaders(tmp_path: Path) -> None:
    signing, kem = SigningKey.generate(), KemPrivateKey.generate(HpkeSuite.X25519)
    save_private_key(tmp_path / "s.key", signing)
    save_private_key(tmp_path / "k.key", kem)
    assert load_signing_key(tmp_path / "s.key") == signing
    assert load_kem_key(tmp_path / "k.key") == kem
    with pytest.raises(ConfigurationError, match="Ed25519"):
        load_signing_key(tmp_path / "k.key")
    with pytest.raises(ConfigurationError, match="HPKE"):
        load_kem_key(tmp_path / "s.key")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660])
def test_group_or_world_accessible_key_file_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "node.key"
    save_private_key(path, SigningKey.generate())
    path.chmod(mode)
    with pytest.raises(ConfigurationError, match="0600"):
        load_private_key(path)


def test_owner_read_only_key_file_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    key = SigningKey.generate()
    save_private_key(path, key)
    path.chmod(0o400)
    assert load_private_key(path) == key


def _rewrite(path: Path, **changes: object) -> None:
    document = json.loads(path.read_text())
    document.update(changes)
    path.write_text(json.dumps(document))


def test_key_id_mismatch_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    save_private_key(path, SigningKey.generate())
    _rewrite(path, key_id=SigningKey.generate().key_id)
    with pytest.raises(ConfigurationError, match="key_id"):
        load_private_key(path)


@pytest.mark.parametrize(
    "changes",
    [
        {"type": "rsa"},
        {"suite": HpkeSuite.X25519.value},
        {"private": "not base64url!"},
        {"private": b64u_encode(bytes(31))},
        {"extra": 1},
    ],
)
def test_malformed_key_file_is_refused_without_echoing_it(
    tmp_path: Path, changes: dict[str, object]
) -> None:
    path = tmp_path / "node.key"
    key = SigningKey.generate()
    save_private_key(path, key)
    _rewrite(path, **changes)
    with pytest.raises(ConfigurationError) as caught:
        load_private_key(path)
    assert b64u_encode(key.private) not in str(caught.value)


def test_missing_or_garbage_key_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="cannot open"):
        load_private_key(tmp_path / "absent.key")
    garbage = tmp_path / "garbage.key"
    garbage.write_bytes(b"\xff\x00")
    garbage.chmod(0o600)
    with pytest.raises(ConfigurationError, match="malformed"):
        load_private_key(garbage)
