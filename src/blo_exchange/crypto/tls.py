"""TLS for a node's HTTPS: a private CA and its server certificates, and the server's context.

``make run`` makes a demo CA and one certificate per node (loopback names) with :func:`demo_pki`;
production brings certificates from the agency's own CA and points ``BLO_TLS_CERT_FILE`` and
``BLO_TLS_KEY_FILE`` at them. :func:`server_context` is the one place that says what TLS a node
speaks: TLS 1.2 or later; for 1.2 only ECDHE with AES-GCM or ChaCha20-Poly1305 (forward secrecy,
AEAD); 1.3's suites are all of that kind already. Keys are P-256 and written 0600.

With a client CA bundle (``BLO_CLIENT_CA_FILE``) the server context asks every client for a
certificate (optional: a client without one still connects and authenticates with its token) and
OpenSSL verifies a presented one against that bundle alone: a chain to another CA, an expired
certificate or one without the clientAuth purpose ends the handshake. Which principal a verified
certificate stands for is not decided here (``services.auth``); device certificates for the demo
come from :func:`demo_device_certificate`.
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
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from blo_exchange.crypto.secretfile import write_private_file

__all__ = [
    "TLS12_CIPHERS",
    "DemoPki",
    "client_context",
    "demo_device_certificate",
    "demo_pki",
    "server_context",
]

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
        ca_cert, ca_key = _load_ca(directory)
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
            _issue(
                (ca_cert, ca_key),
                name,
                (cert_file, key_file),
                start=now - dt.timedelta(minutes=5),
                days=_LEAF_DAYS,
                usage=ExtendedKeyUsageOID.SERVER_AUTH,
                san=_san(hosts),
            )
        certificates[name] = (cert_file, key_file)
    return DemoPki(ca_file=ca_file, certificates=certificates)


def _load_ca(directory: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    ca_cert = x509.load_pem_x509_certificate((directory / "ca.pem").read_bytes())
    loaded = serialization.load_pem_private_key((directory / "ca.key").read_bytes(), password=None)
    if not isinstance(loaded, ec.EllipticCurvePrivateKey):
        raise ValueError(f"{directory / 'ca.key'} is not a P-256 key")
    return ca_cert, loaded


def _still_valid(cert_file: Path, key_file: Path, now: dt.datetime) -> bool:
    if not (cert_file.exists() and key_file.exists()):
        return False
    cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
    return cert.not_valid_after_utc > now + dt.timedelta(days=1)


def server_context(
    cert_file: Path, key_file: Path, *, client_ca_file: Path | None = None
) -> ssl.SSLContext:
    """The server side of a node's HTTPS: TLS 1.2+, ECDHE and AEAD only, no renegotiation; with
    ``client_ca_file``, client certificates are asked for and verified against it alone."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers(TLS12_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.load_cert_chain(str(cert_file), str(key_file))
    if client_ca_file is not None:
        # CERT_OPTIONAL: no certificate is fine (the token decides); a bad one ends the handshake.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=str(client_ca_file))
    return context


def client_context(
    ca_file: Path | None, *, cert_file: Path | None = None, key_file: Path | None = None
) -> ssl.SSLContext:
    """The client side: the node checked against ``ca_file`` (else the system's CAs), and the
    device certificate ``cert_file`` (key ``key_file``, or in the same file) presented if given."""
    context = ssl.create_default_context(cafile=None if ca_file is None else str(ca_file))
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), None if key_file is None else str(key_file))
    return context


def demo_device_certificate(
    directory: Path,
    name: str,
    *,
    now: dt.datetime,
    days: int = _LEAF_DAYS,
    not_before: dt.datetime | None = None,
) -> tuple[Path, Path]:
    """A terminal device certificate (clientAuth) ``name.pem`` with key ``name.key`` (0600) from
    the CA under ``directory`` (made by :func:`demo_pki`), valid from ``not_before`` (default:
    a few minutes before ``now``) for ``days``; made once, reused while valid."""
    cert_file, key_file = directory / f"{name}.pem", directory / f"{name}.key"
    if not_before is None and _still_valid(cert_file, key_file, now):
        return cert_file, key_file
    _issue(
        _load_ca(directory),
        name,
        (cert_file, key_file),
        start=now - dt.timedelta(minutes=5) if not_before is None else not_before,
        days=days,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    return cert_file, key_file


def _issue(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    name: str,
    files: tuple[Path, Path],
    *,
    start: dt.datetime,
    days: int,
    usage: x509.ObjectIdentifier,
    san: x509.SubjectAlternativeName | None = None,
) -> None:
    """A leaf certificate for ``name`` with a new P-256 key, written to ``files`` (key 0600)."""
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + dt.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    cert_file, key_file = files
    write_private_file(key_file, _key_pem(key))
    cert_file.write_bytes(builder.sign(ca_key, hashes.SHA256()).public_bytes(Encoding.PEM))
