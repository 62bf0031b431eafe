"""X.509 client certificates: a certificate's fingerprint, and the one a TLS layer verified.

A client certificate reaches a node in one of two ways, both handed to the app as the ASGI TLS
extension (``scope["extensions"]["tls"]``, asgiref's spec): the node's own TLS handshake
verified it against the pinned device CA (``api.client_certificates``), or a trusted
TLS-terminating proxy verified it and forwarded it in a header. Either way the node maps only the
certificate's SHA-256 fingerprint (over its DER bytes) to a principal. Nothing here verifies a
chain or a validity period: that is the TLS layer's job, the node's or the proxy's (see
docs/threat-model.md).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

__all__ = ["certificate_sha256", "verified_client_certificate"]


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


def verified_client_certificate(scope: Mapping[str, Any]) -> str | None:
    """The fingerprint of the client certificate in an ASGI scope's TLS extension, or None when
    the client presented none. ValueError when the layer that put it there says it did not
    verify (``client_cert_error``) or it is not a certificate."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, Mapping):
        return None
    error = tls.get("client_cert_error")
    if error:
        raise ValueError(str(error))
    chain = tls.get("client_cert_chain")
    if not isinstance(chain, list | tuple) or not chain:
        return None
    leaf = chain[0]
    if not isinstance(leaf, str):
        raise ValueError("not an X.509 certificate")
    try:
        return certificate_sha256(leaf.encode("ascii"))
    except UnicodeEncodeError as exc:
        raise ValueError("not an X.509 certificate") from exc
