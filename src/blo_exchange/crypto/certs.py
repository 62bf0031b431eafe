"""X.509 client certificates, for mutual TLS terminated at a proxy in front of a node.

The proxy verifies the certificate chain and forwards the certificate; the node only maps the
certificate's SHA-256 fingerprint (over its DER bytes) to a principal. Nothing here verifies a
chain or a validity period: that is the proxy's job (see docs/threat-model.md).
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["certificate_sha256"]


def certificate_sha256(data: bytes) -> str:
    """Hex SHA-256 of the certificate's DER encoding, from PEM or DER; ValueError if neither."""
    try:
        certificate = (
            x509.load_pem_x509_certificate(data)
            if data.lstrip().startswith(b"-----BEGIN")
            else x509.load_der_x509_certificate(data)
        )
    except ValueError as exc:
        raise ValueError("not an X.509 certificate") from exc
    return hashlib.sha256(certificate.public_bytes(Encoding.DER)).hexdigest()
