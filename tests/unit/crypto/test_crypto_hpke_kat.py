"""RFC 9180 Appendix A.1.1 known answer: the HPKE underneath the envelope is the standard one.

DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode, sequence number 0. The
public ``Suite.decrypt`` takes no AAD, so this uses pyca's ``_decrypt_with_aad``.
"""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.bindings._rust import openssl as rust_openssl
from cryptography.hazmat.primitives import hpke
from cryptography.hazmat.primitives.asymmetric import x25519

SK_RM = bytes.fromhex("4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8")
PK_RM = bytes.fromhex("3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d")
ENC = bytes.fromhex("37fda3567bdbd628e88668c3c8d7e97d1d1253b6d4ea6d44c150f741f1bf4431")
INFO = bytes.fromhex("4f6465206f6e2061204772656369616e2055726e")
AAD_SEQ0 = bytes.fromhex("436f756e742d30")
PT = bytes.fromhex("4265617574792069732074727574682c20747275746820626561757479")
CT_SEQ0 = bytes.fromhex(
    "f938558b5d72f1a23810b4be2ab4f84331acc02fc97babc53a52ae8218a355a96d8770ac83d07bea87e13c512a"
)

SUITE = hpke.Suite(hpke.KEM.X25519, hpke.KDF.HKDF_SHA256, hpke.AEAD.AES_128_GCM)


def _decrypt(ciphertext: bytes, aad: bytes = AAD_SEQ0) -> bytes:
    private_key = x25519.X25519PrivateKey.from_private_bytes(SK_RM)
    return rust_openssl.hpke._decrypt_with_aad(SUITE, ciphertext, private_key, info=INFO, aad=aad)


def test_private_decrypt_with_aad_api_exists() -> None:
    assert callable(getattr(rust_openssl.hpke, "_decrypt_with_aad", None))


def test_vector_recipient_public_key() -> None:
    key = x25519.X25519PrivateKey.from_private_bytes(SK_RM)
    assert key.public_key().public_bytes_raw() == PK_RM


def test_rfc9180_a11_sequence_0_decrypts_to_published_plaintext() -> None:
    assert PT == b"Beauty is truth, truth beauty"
    assert _decrypt(ENC + CT_SEQ0) == PT


@pytest.mark.parametrize("bit", [0, 8 * 17 + 3, 8 * len(CT_SEQ0) - 1])
def test_rfc9180_a11_flipped_ciphertext_bit_fails(bit: int) -> None:
    tampered = bytearray(CT_SEQ0)
    tampered[bit // 8] ^= 1 << (bit % 8)
    with pytest.raises(InvalidTag):
        _decrypt(ENC + bytes(tampered))


def test_rfc9180_a11_wrong_aad_fails() -> None:
    with pytest.raises(InvalidTag):
        _decrypt(ENC + CT_SEQ0, aad=b"Count-1")
