"""Who is looking at a page, in which language, and rendering a page for them.

A page's principal comes from the session cookie (see ``sessions``), never from an
``Authorization`` header: the JSON API keeps bearer tokens, the pages keep cookies, and neither
accepts the other's credential.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment

from blo_exchange.crypto.certs import verified_client_certificate
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.errors import Unauthenticated
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.registry import Services
from blo_exchange.web.formatting import Formats
from blo_exchange.web.messages import LANGUAGES, Catalogue, catalogue, match, negotiate
from blo_exchange.web.sessions import SESSION_COOKIE, Session, SessionStore

__all__ = [
    "HOME",
    "LANG_COOKIE",
    "SignInRequired",
    "Viewer",
    "WrongRole",
    "language_of",
    "render",
    "require",
    "services_of",
    "session_principal",
    "sessions_of",
    "viewer_of",
]

LANG_COOKIE = "blo_lang"

HOME: dict[Role, str] = {
    Role.TERMINAL: "/officer",
    Role.ANALYST: "/analyst",
    Role.AUDITOR: "/auditor",
    Role.ADMIN: "/admin",
}


class SignInRequired(Exception):  # noqa: N818 - a redirect, not an error
    """Raised by a page dependency when there is no valid session; becomes a 303 to /sign-in."""


class WrongRole(Exception):  # noqa: N818
    def __init__(self, viewer: Viewer) -> None:
        super().__init__(viewer.principal.role.value)
        self.viewer = viewer


@dataclass(frozen=True)
class Viewer:
    principal: Principal
    session: Session

    @property
    def csrf(self) -> str:
        return self.session.csrf


def services_of(request: Request) -> Services:
    """The node's services, by type (registered by ``bootstrap``)."""
    services: Services = request.app.state.services
    return services


def sessions_of(request: Request) -> SessionStore:
    store: SessionStore = request.app.state.web_sessions
    return store


def language_of(request: Request) -> str:
    for candidate in (request.query_params.get("lang"), request.cookies.get(LANG_COOKIE)):
        found = None if candidate is None else match(candidate)
        if found is not None:
            return found
    return negotiate(request.headers.get("accept-language"))


async def session_principal(request: Request, session_id: str | None) -> Principal | None:
    """The principal of a live session, as of now: none once it is signed out or expired, or
    its credential is revoked, expired or no longer admitted by this node."""
    session = sessions_of(request).get(session_id)
    if session is None:
        return None
    auth = services_of(request).get(Authenticator)
    try:
        # A bound credential's session, too, lives only on connections with its device certificate.
        certificate = verified_client_certificate(request.scope)
        return await auth.authenticate_hash(session.token_hash, certificate=certificate)
    except (Unauthenticated, ValueError):
        sessions_of(request).drop(session.id)
        return None


async def viewer_of(request: Request) -> Viewer | None:
    session = sessions_of(request).get(request.cookies.get(SESSION_COOKIE))
    if session is None:
        return None
    principal = await session_principal(request, session.id)
    if principal is None:
        return None
    request.state.principal_id = principal.id
    limiter = getattr(request.app.state, "limiter", None)
    if limiter is not None:  # the API's per-principal rate limit covers the pages too
        limiter.take(principal.id)
    return Viewer(principal=principal, session=session)


def require(*roles: Role) -> Callable[[Request], Awaitable[Viewer]]:
    """A dependency: the signed-in viewer, who must hold one of ``roles``."""

    async def dependency(request: Request) -> Viewer:
        viewer = await viewer_of(request)
        if viewer is None:
            raise SignInRequired
        if viewer.principal.role not in roles:
            raise WrongRole(viewer)
        return viewer

    return dependency


def render(
    request: Request,
    template: str,
    *,
    viewer: Viewer | None = None,
    status: int = 200,
    return_to: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render ``template`` in the viewer's language. ``return_to`` is where the language switcher
    sends the reader back (defaults to this URL; a page answering a POST must name a GET page)."""
    env: Environment = request.app.state.web_templates
    lang = language_of(request)
    t: Catalogue = catalogue(lang)
    here = return_to or request.url.path + (f"?{request.url.query}" if request.url.query else "")
    html = env.get_template(template).render(
        t=t,
        fmt=Formats(lang),
        lang=lang,
        languages=LANGUAGES,
        viewer=viewer,
        role=None if viewer is None else viewer.principal.role.value,
        node=services_of(request).get(Node),
        here=here,
        **context,
    )
    return HTMLResponse(html, status_code=status)
