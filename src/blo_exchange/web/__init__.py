"""The node's web pages: server-rendered HTML (Jinja2) and same-origin static files.

:func:`install` adds them to the node's FastAPI app. Every page is in English, Russian, Tajik,
Uzbek (Latin and Cyrillic) and Kyrgyz (``i18n/``), works with the keyboard, and loads nothing
from another origin: the app's CSP is ``default-src 'self'``, so scripts and styles are files
under ``static/`` and no element carries an inline script or style. Static files are served under
content-hashed names and every response is compressed (``assets``): officers file from phones on
slow, metered links.

Roles: an officer (terminal principal) files alerts at ``/officer`` and checks plates, documents
and names at ``/officer/lookout``; an analyst reads the live feed at ``/analyst``, searches it at
``/analyst/search`` and sees seizure statistics at ``/analyst/statistics``; an auditor browses and
verifies the ledger at ``/auditor``.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import Response
from jinja2 import ChainableUndefined, Environment, PackageLoader, select_autoescape

from blo_exchange.web import (
    pages_analyst,
    pages_attachments,
    pages_auditor,
    pages_auth,
    pages_officer,
    pages_retention,
    pages_search,
    pages_statistics,
)
from blo_exchange.web.assets import install_assets
from blo_exchange.web.deps import HOME, SignInRequired, WrongRole, render
from blo_exchange.web.sessions import SessionStore

__all__ = ["install"]

STATIC = Path(__file__).parent / "static"


def _tlp_class(tlp: object) -> str:
    return "tlp-" + str(tlp).lower().replace("+", "-")


def _zip_pairs(values: object) -> list[tuple[str, str]]:
    """``["KG-TJ"]`` → ``[("KG-TJ", "KG-TJ")]``: options whose label is the code itself."""
    return [(str(v), str(v)) for v in values]  # type: ignore[attr-defined]


def install(app: FastAPI) -> None:
    """Mount the pages, the static files and the session store on ``app``."""
    env = Environment(
        loader=PackageLoader("blo_exchange.web", "templates"),
        autoescape=select_autoescape(["html", "svg"]),
        undefined=ChainableUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["tlp_class"] = _tlp_class
    env.filters["zip_pairs"] = _zip_pairs
    env.globals["home"] = {role.value: path for role, path in HOME.items()}
    env.globals["asset"] = install_assets(app, STATIC).url
    app.state.web_templates = env
    app.state.web_sessions = SessionStore()

    async def sign_in(request: Request, exc: Exception) -> Response:
        return pages_auth.sign_in_redirect(request)

    async def wrong_role(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WrongRole)
        return render(request, "error.html", viewer=exc.viewer, status=403, problem="forbidden")

    app.add_exception_handler(SignInRequired, sign_in)
    app.add_exception_handler(WrongRole, wrong_role)
    for module in (
        pages_auth,
        pages_officer,
        pages_analyst,
        pages_statistics,
        pages_auditor,
        pages_search,
        pages_retention,
        pages_attachments,
    ):
        app.include_router(module.router)
