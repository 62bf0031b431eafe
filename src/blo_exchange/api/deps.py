"""FastAPI dependencies: the node runtime and the authenticated principal."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import Depends, Request

from blo_exchange.api.limits import RateLimiter
from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.config import Settings
from blo_exchange.crypto.certs import certificate_sha256
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import Forbidden, Unauthenticated

__all__ = [
    "Auditor",
    "CurrentPrincipal",
    "Runtime",
    "authenticate_request",
    "get_principal",
    "get_runtime",
]


def get_runtime(request: Request) -> NodeRuntime:
    runtime: NodeRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[NodeRuntime, Depends(get_runtime)]


async def authenticate_request(request: Request, runtime: NodeRuntime) -> Principal:
    """The principal of this request's credential, as of now; an open stream asks again."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = scheme.lower() == "bearer"
    # A bearer token, when there is one, is the credential; a forwarded certificate otherwise.
    certificate = None if bearer else _forwarded_certificate(request)
    if certificate is not None:
        return await runtime.auth.authenticate_certificate(certificate)
    return await runtime.auth.authenticate(token.strip() if bearer else None)


async def get_principal(request: Request, runtime: Runtime) -> Principal:
    principal = await authenticate_request(request, runtime)
    request.state.principal_id = principal.id
    limiter: RateLimiter = request.app.state.limiter
    limiter.take(principal.id)
    return principal


def _forwarded_certificate(request: Request) -> str | None:
    """The SHA-256 of the client certificate a trusted proxy forwarded, if mTLS is configured.

    (1) only when a header is configured; (2) only from a trusted proxy's address — anyone
    else could simply send the header; (3) the header must hold a certificate. Not checked here:
    the chain and validity, which the proxy verified before forwarding.
    """
    settings: Settings = request.app.state.settings
    if settings.client_cert_header is None:
        return None
    value = request.headers.get(settings.client_cert_header)
    if not value:
        return None
    if request.client is None or request.client.host not in settings.trusted_proxies:
        raise Unauthenticated("client certificates are accepted only through the trusted proxy")
    try:
        return certificate_sha256(unquote(value).encode("ascii"))
    except (ValueError, UnicodeEncodeError) as exc:
        raise Unauthenticated("the forwarded client certificate is not readable") from exc


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_auditor(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.AUDITOR:
        raise Forbidden("the ledger is for auditors")
    return principal


Auditor = Annotated[Principal, Depends(require_auditor)]
