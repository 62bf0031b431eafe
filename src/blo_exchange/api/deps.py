"""FastAPI dependencies: the node's services, by type, and the authenticated principal."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

from fastapi import Depends, Request

from blo_exchange.api.limits import RateLimiter
from blo_exchange.crypto.certs import verified_client_certificate
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import Forbidden, Unauthenticated
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.registry import Services

__all__ = [
    "Auditor",
    "CurrentPrincipal",
    "authenticate_request",
    "get_principal",
    "presented_certificate",
    "service",
    "services_of",
]

T = TypeVar("T")


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def service(kind: type[T]) -> Callable[[Request], Awaitable[T]]:
    """A dependency giving the node's service of type ``kind``:
    ``feed: Annotated[FeedService, Depends(service(FeedService))]``. A coroutine function,
    though it awaits nothing: FastAPI runs a plain function dependency in its thread pool, two
    thread switches on every request (issue 14)."""

    async def get(request: Request) -> T:
        return services_of(request).get(kind)

    return get


async def authenticate_request(request: Request) -> Principal:
    """The principal of this request's credential, as of now; an open stream asks again."""
    auth = services_of(request).get(Authenticator)
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    certificate = presented_certificate(request)
    if scheme.lower() == "bearer":  # the token is the credential, a certificate its second factor
        return await auth.authenticate(token.strip(), certificate=certificate)
    if certificate is not None:  # a principal whose only credential is its certificate
        return await auth.authenticate_certificate(certificate)
    return await auth.authenticate(None, certificate=None)


async def get_principal(request: Request) -> Principal:
    principal = await authenticate_request(request)
    request.state.principal_id = principal.id
    limiter: RateLimiter = request.app.state.limiter
    limiter.take(principal.id)
    return principal


def presented_certificate(request: Request) -> str | None:
    """The SHA-256 of the client certificate the TLS layer verified, if the client presented one:
    the node's own handshake, or the trusted proxy's header (``api.client_certificates``)."""
    try:
        return verified_client_certificate(request.scope)
    except ValueError as exc:
        raise Unauthenticated(f"the client certificate is refused: {exc}") from exc


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_auditor(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.AUDITOR:
        raise Forbidden("the ledger is for auditors")
    return principal


Auditor = Annotated[Principal, Depends(require_auditor)]
