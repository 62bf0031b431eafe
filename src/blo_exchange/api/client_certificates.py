"""How a client certificate reaches the app: as the ASGI TLS extension, from one of two places.

1. **The node's own TLS** (``BLO_CLIENT_CA_FILE`` set): :class:`PeerCertificateProtocol`, the
   node's uvicorn protocol, reads the peer's certificate once the handshake is done (OpenSSL
   verified it against the pinned device CA, validity period included, or the handshake failed)
   and adds ``scope["extensions"]["tls"]`` to every request of that connection. uvicorn itself
   puts nothing of TLS in the scope. A proxy header is then ignored altogether.
2. **A trusted TLS-terminating proxy** (``BLO_CLIENT_CERT_HEADER``, without a client CA):
   :class:`ForwardedCertificate` turns the header into the same extension, but only when the
   connection's real peer address (uvicorn runs with ``proxy_headers=False``, so no
   ``X-Forwarded-For`` moves it) is in ``BLO_TRUSTED_PROXIES``; from anyone else the extension
   carries ``client_cert_error`` and the request is refused.

Not here: the fingerprint and which principal it is bound to (``crypto.certs``,
``services.auth``). Python 3.11's ``ssl`` exposes the peer's leaf certificate only, so
``client_cert_chain`` holds that one certificate.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Collection
from typing import Any
from urllib.parse import unquote

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["ForwardedCertificate", "PeerCertificateProtocol", "tls_extension"]

UNTRUSTED_PROXY = "client certificates are accepted only through the trusted proxy"
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(transport: asyncio.BaseTransport) -> dict[str, Any] | None:
    """The ASGI TLS extension of a connection, or None when it is not TLS."""
    ssl_object: ssl.SSLObject | None = transport.get_extra_info("ssl_object")
    if ssl_object is None:
        return None
    # Non-empty only if the server asked for a certificate and OpenSSL verified the one it got.
    der = ssl_object.getpeercert(binary_form=True)
    return {
        "server_cert": None,
        "client_cert_chain": [ssl.DER_cert_to_PEM_cert(der)] if der else [],
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
    }


def _with_extension(app: Any, tls: dict[str, Any]) -> Any:
    async def connection_app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
        await app(scope, receive, send)

    return connection_app


class PeerCertificateProtocol:
    """A mixin in front of the node's uvicorn protocol (h11 or httptools, with the slow-client
    deadlines: ``api.slow_clients.guarded_protocol(mixins=...)``): the TLS extension in each
    request's scope. Both uvicorn protocols keep the app they call in ``self.app``."""

    app: Any

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        tls = tls_extension(transport)
        if tls is not None:  # this connection's requests go through an app that adds it
            self.app = _with_extension(self.app, tls)


class ForwardedCertificate:
    """Proxy mode: the certificate a trusted proxy forwarded in ``header`` (URL-encoded PEM,
    e.g. nginx's ``$ssl_client_escaped_cert``) as the TLS extension."""

    def __init__(self, app: ASGIApp, *, header: str, trusted: Collection[str]) -> None:
        self._app = app
        self._header = header.lower().encode("latin-1")
        self._trusted = frozenset(trusted)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            value = next((v for k, v in scope["headers"] if k == self._header), None)
            if value:
                client = scope.get("client")
                if client is None or client[0] not in self._trusted:
                    tls = {"client_cert_chain": [], "client_cert_error": UNTRUSTED_PROXY}
                else:
                    tls = {"client_cert_chain": [unquote(value.decode("latin-1"))]}
                scope["extensions"] = {**(scope.get("extensions") or {}), "tls": tls}
        await self._app(scope, receive, send)
