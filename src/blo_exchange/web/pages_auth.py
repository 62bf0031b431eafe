"""Sign-in, sign-out, the language switch and the start page of each role."""

from __future__ import annotations

import secrets
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from blo_exchange.crypto.certs import verified_client_certificate
from blo_exchange.domain.directory import Role
from blo_exchange.errors import DeviceCertificateRequired, RateLimited, Unauthenticated
from blo_exchange.services.auth import Authenticator, hash_token
from blo_exchange.web.deps import (
    HOME,
    LANG_COOKIE,
    Viewer,
    render,
    require,
    services_of,
    sessions_of,
    viewer_of,
)
from blo_exchange.web.messages import LANGUAGES
from blo_exchange.web.sessions import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    SIGNIN_COOKIE,
    SessionsFull,
    clear_cookie,
    same_token,
    set_cookie,
)

__all__ = ["router", "safe_next"]

router = APIRouter(include_in_schema=False)

SIGNIN_FORM_SECONDS = 3600


def safe_next(value: str | None, default: str = "/") -> str:
    """A same-site path to go back to; anything else (``//evil``, ``https://…``) is ``default``."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


@router.get("/")
async def start(request: Request) -> Response:
    viewer = await viewer_of(request)
    if viewer is None:
        return RedirectResponse("/sign-in", status_code=303)
    return RedirectResponse(HOME[viewer.principal.role], status_code=303)


def _sign_in_page(
    request: Request, *, status: int = 200, error: str | None = None, notice: str | None = None
) -> Response:
    token = secrets.token_urlsafe(32)
    response = render(
        request,
        "sign_in.html",
        status=status,
        csrf=token,
        error=error,
        notice=notice,
        next=safe_next(request.query_params.get("next"), ""),
        return_to="/sign-in",
    )
    set_cookie(request, response, SIGNIN_COOKIE, token, max_age=SIGNIN_FORM_SECONDS)
    return response


@router.get("/sign-in")
async def sign_in_form(request: Request) -> Response:
    notice = "signin.signed_out" if request.query_params.get("signed_out") else None
    return _sign_in_page(request, notice=notice)


def _throttle(request: Request, key: str) -> None:
    limiter = getattr(request.app.state, "signin_limiter", None)
    if limiter is not None:
        limiter.take(key)


@router.post("/sign-in")
async def sign_in(request: Request) -> Response:
    # (1) a few tries per address, whatever the token: guessing and session churn are slow.
    try:
        _throttle(request, "address:" + (request.client.host if request.client else "-"))
    except RateLimited:
        return _sign_in_page(request, status=429, error="signin.throttled")
    # (2) the double-submit CSRF check: the form's token must equal the cookie set with the form.
    form = await request.form()
    expected = request.cookies.get(SIGNIN_COOKIE)
    if not expected or not same_token(form.get("csrf"), expected):
        return _sign_in_page(request, status=403, error="signin.expired")
    # (3) the token, checked like a bearer token and admitted only by its own node (or agency),
    # with the device certificate the browser presented in the TLS handshake where the token is
    # bound to one; one answer for every way it can be wrong.
    token = form.get("token")
    auth = services_of(request).get(Authenticator)
    try:
        principal = await auth.authenticate(
            token.strip() if isinstance(token, str) else None,
            certificate=verified_client_certificate(request.scope),
        )
    except DeviceCertificateRequired:  # the token is right, the device is not
        return _sign_in_page(request, status=401, error="signin.device")
    except (Unauthenticated, ValueError):
        return _sign_in_page(request, status=401, error="signin.failed")
    # (4) a few sign-ins per principal too, from however many addresses.
    try:
        _throttle(request, "principal:" + principal.id)
    except RateLimited:
        return _sign_in_page(request, status=429, error="signin.throttled")
    # (5) a new session (never one the browser brought along), keyed by the token's hash only;
    # the store ends this credential's own oldest session, never another's.
    assert isinstance(token, str)
    sessions = sessions_of(request)
    sessions.drop(request.cookies.get(SESSION_COOKIE))
    try:
        session = sessions.create(hash_token(token.strip()))
    except SessionsFull:
        return _sign_in_page(request, status=503, error="signin.full")
    target = safe_next(str(form.get("next") or ""), HOME[principal.role])
    response = RedirectResponse(target, status_code=303)
    set_cookie(request, response, SESSION_COOKIE, session.id, max_age=SESSION_SECONDS)
    clear_cookie(request, response, SIGNIN_COOKIE)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    viewer = await viewer_of(request)
    if viewer is not None:
        form = await request.form()
        if not same_token(form.get("csrf"), viewer.csrf):
            return render(request, "error.html", viewer=viewer, status=403, problem="csrf")
        sessions_of(request).drop(viewer.session.id)
    response = RedirectResponse("/sign-in?signed_out=1", status_code=303)
    clear_cookie(request, response, SESSION_COOKIE)
    return response


@router.get("/language")
async def language(request: Request) -> Response:
    """Switch the pages' language; a harmless preference, so a plain link does it."""
    lang = request.query_params.get("lang", "")
    target = safe_next(request.query_params.get("next"))
    response = RedirectResponse(target, status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(
            LANG_COOKIE,
            lang,
            max_age=365 * 24 * 3600,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
    return response


@router.get("/admin")
async def admin(
    request: Request, viewer: Annotated[Viewer, Depends(require(Role.ADMIN))]
) -> Response:
    return render(request, "error.html", viewer=viewer, problem="admin")


def sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/sign-in?next={quote(target, safe='')}", status_code=303)
