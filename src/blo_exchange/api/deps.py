"""FastAPI dependencies: the node's services, by type, and the authenticated principal."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, TypeVar
from urllib.parse import unquote

from fastapi import Depends, Request

from blo_exchange.api.limits import RateLimiter
from blo_exchange.config import Settings
from blo_exchange.crypto.certs import certificate_sha256
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import Forbidden, Unauthenticated
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.registry import Services

__all__ = [
    "Auditor",
    "CurrentPrincipal",
    "authenticate_request",
    "get_principal",
    "service",
    "services_of",
]

T = TypeVar("T")


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def service(kind: type[T]) -> Callable[[Request], T]:
    """A dependency giving the node's service of type ``kind``:
    ``feed: Annotated[FeedService, Depends(service(FeedService))]``."""

    def get(request: Request) -> T:
        return services_of(request).get(kind)

    return get


async def authenticate_request(request: Request) -> Principal:
    """The principal of this request's credential, as of now; an open stream asks again."""
    auth = services_of(request).get(Authenticator)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    bearer = scheme.lower() == "bearer"
    # A bearer token, when there is one, is the credential; a forwarded certificate otherwise.
    certificate = None if bearer else _forwarded_certificate(request)
    if certificate is not None:
        return await auth.authenticate_certificate(certificate)
    return await auth.authenticate(token.strip() if bearer else None)


async def get_principal(request: Request) -> Principal:
    principal = await authenticate_request(request)
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
