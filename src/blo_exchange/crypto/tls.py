"""TLS for a node's HTTPS: a private CA and its server certificates, and the server's context.

``make run`` makes a demo CA and one certificate per node (loopback names) with :func:`demo_pki`;
production brings certificates from the agency's own CA and points ``BLO_TLS_CERT_FILE`` and
``BLO_TLS_KEY_FILE`` at them. :func:`server_context` is the one place that says what TLS a node
speaks: TLS 1.2 or later; for 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (forward secrecy,
AEAD); 1.3's suites are all of that kind already. Keys are P-256 and written 0600.

Not here: client certificates (uvicorn does not hand the peer's certificate to the app, so a node
cannot map one to a principal itself; the proxy mode in ``api.deps`` remains for that).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from blo_exchange.crypto.secretfile import write_private_file

__all__ = ["TLS12_CIPHERS", "DemoPki", "demo_pki", "server_context"]

TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
_CA_DAYS = 3650
_LEAF_DAYS = 397  # the CA/Browser Forum's limit for server certificates


def _name(common_name: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "blo-exchange demo"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _san(hosts: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return x509.SubjectAlternativeName(names)


@dataclass(frozen=True)
class DemoPki:
    ca_file: Path
    certificates: dict[str, tuple[Path, Path]]
    """name -> (certificate chain file, key file)"""


def demo_pki(
    directory: Path, names: Sequence[str], *, hosts: Sequence[str], now: dt.datetime
) -> DemoPki:
    """A CA (``ca.pem``, key ``ca.key``) and a server certificate per name valid for ``hosts``,
    under ``directory``; made once, reused on later runs while they are valid."""
    directory.mkdir(parents=True, exist_ok=True)
    ca_file, ca_key_file = directory / "ca.pem", directory / "ca.key"
    if ca_file.exists() and ca_key_file.exists():
        ca_cert = x509.load_pem_x509_certificate(ca_file.read_bytes())
        loaded = serialization.load_pem_private_key(ca_key_file.read_bytes(), password=None)
        assert isinstance(loaded, ec.EllipticCurvePrivateKey)
        ca_key = loaded
    else:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca_cert = (
            x509.CertificateBuilder()
            .subject_name(_name("blo-exchange demo CA"))
            .issuer_name(_name("blo-exchange demo CA"))
            .public_key(ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=_CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=False,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_private_file(ca_key_file, _key_pem(ca_key))
        ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    certificates: dict[str, tuple[Path, Path]] = {}
    for name in names:
        cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
        if not _still_valid(cert_file, key_file, now):
            key = ec.generate_private_key(ec.SECP256R1())
            cert = (
                x509.CertificateBuilder()
                .subject_name(_name(name))
                .issuer_name(ca_cert.subject)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5))
                .not_valid_after(now + dt.timedelta(days=_LEAF_DAYS))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(_san(hosts), critical=False)
                .add_extension(
                    x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
                )
                .sign(ca_key, hashes.SHA256())
            )
            write_private_file(key_file, _key_pem(key))
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        certificates[name] = (cert_file, key_file)
    return DemoPki(ca_file=ca_file, certificates=certificates)


def _still_valid(cert_file: Path, key_file: Path, now: dt.datetime) -> bool:
    if not (cert_file.exists() and key_file.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc > now + dt.timedelta(days=1)


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The server side of a node's HTTPS: TLS 1.2+, ECDHE and AEAD only, no renegotiation."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(str(cert_file), str(key_file))
    return context
