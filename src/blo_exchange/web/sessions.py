"""Browser sessions and CSRF tokens of the web pages.

A session is a random id in an HttpOnly, SameSite=Strict cookie (Secure when the request came over
TLS). The server keeps, per session, only the SHA-256 of the principal's token (the directory's own
key for it), a CSRF token and an expiry: the token itself is dropped once sign-in has checked it.
Every request looks the principal up again by that hash, so revoking or expiring a credential ends
its sessions at once.

CSRF, in order: (1) SameSite=Strict keeps the cookie off cross-site requests; (2) every form that
changes state carries the session's CSRF token, compared in constant time; (3) the sign-in form,
which has no session yet, uses a double-submit cookie instead. Not checked: ``Origin`` headers
(proxies strip them inconsistently; the two tokens suffice).

Limits, so one credential can't crowd out the others: each credential holds at most
``MAX_SESSIONS_PER_CREDENTIAL`` sessions (a new sign-in ends its own oldest); when the node holds
``MAX_SESSIONS`` in all, sign-in is refused (``SessionsFull``) rather than ending anyone else's.

Sessions live in this process's memory: a node run as N processes behind a balancer needs sticky
sessions, and a restart signs everyone out. That is the price of keeping no session state in the
database that auditors would have to reason about.
"""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

__all__ = [
    "SESSION_COOKIE",
    "SIGNIN_COOKIE",
    "Session",
    "SessionStore",
    "SessionsFull",
    "clear_cookie",
    "same_token",
    "set_cookie",
]

SESSION_COOKIE = "blo_session"
SIGNIN_COOKIE = "blo_signin"
SESSION_SECONDS = 8 * 3600  # one shift
MAX_SESSIONS = 10_000
MAX_SESSIONS_PER_CREDENTIAL = 8  # a few browsers and tabs of one officer or analyst


class SessionsFull(Exception):  # noqa: N818 - a refusal, turned into a 503 page
    """The node holds as many sessions as it will; nobody else's is dropped to make room."""


@dataclass
class Session:
    id: str
    token_hash: bytes
    csrf: str
    expires: float


class SessionStore:
    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._sessions: dict[str, Session] = {}

    def create(self, token_hash: bytes) -> Session:
        self._expire()
        own = sorted(
            (s for s in self._sessions.values() if s.token_hash == token_hash),
            key=lambda s: s.expires,
        )
        for oldest in own[: max(0, len(own) - MAX_SESSIONS_PER_CREDENTIAL + 1)]:
            del self._sessions[oldest.id]
        if len(self._sessions) >= MAX_SESSIONS:
            raise SessionsFull
        session = Session(
            id=secrets.token_urlsafe(32),
            token_hash=token_hash,
            csrf=secrets.token_urlsafe(32),
            expires=self._clock() + SESSION_SECONDS,
        )
        self._sessions[session.id] = session
        return session

    def get(self, session_id: str | None) -> Session | None:
        if not session_id:
            return None
        session = self._sessions.get(session_id)
        if session is None or session.expires <= self._clock():
            self._sessions.pop(session_id or "", None)
            return None
        return session

    def drop(self, session_id: str | None) -> None:
        self._sessions.pop(session_id or "", None)

    def _expire(self) -> None:
        now = self._clock()
        for stale in [s.id for s in self._sessions.values() if s.expires <= now]:
            del self._sessions[stale]


def same_token(given: object, expected: str) -> bool:
    return isinstance(given, str) and hmac.compare_digest(given.encode(), expected.encode())


def set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def clear_cookie(request: Request, response: Response, name: str) -> None:
    response.delete_cookie(
        name, path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https"
    )
