"""The node's JSON API: its middleware, error mapping and routes, added to an app by
:func:`install`. The app itself, and the node behind it, are built by ``bootstrap.app``."""

from __future__ import annotations

from fastapi import FastAPI

from blo_exchange.api import (
    routes_alerts,
    routes_feed,
    routes_ledger,
    routes_meta,
    routes_reshare,
    routes_retention,
    routes_search,
    routes_statistics,
    routes_taxii,
    routes_uploads,
)
from blo_exchange.api.client_certificates import ForwardedCertificate
from blo_exchange.api.context import RequestContext
from blo_exchange.api.limits import BodyLimit, RateLimiter, SecurityHeaders
from blo_exchange.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from blo_exchange.config import Settings
from blo_exchange.services.outages import Outages

__all__ = ["MAX_BODY_BYTES", "install"]

MAX_BODY_BYTES = 4 * 1024 * 1024  # a 500-alert batch fits; a runaway upload does not

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}


def install(app: FastAPI, settings: Settings, outages: Outages) -> None:
    """Add the API's middleware, problem+json handlers and routes to ``app``."""
    app.state.settings = settings
    app.state.limiter = RateLimiter(rate=settings.rate_limit, burst=settings.rate_burst)
    # Sign-in, per address and per principal: ten tries, then one every six seconds.
    app.state.signin_limiter = RateLimiter(rate=1 / 6, burst=10)
    if settings.client_cert_header is not None and settings.client_ca_file is None:
        # The proxy mode; with the node's own client CA, a forwarded header means nothing.
        app.add_middleware(
            ForwardedCertificate,
            header=settings.client_cert_header,
            trusted=settings.trusted_proxies,
        )
    # Outermost last: security headers also go on the body limit's own 413.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    headers = dict(SECURITY_HEADERS)
    if settings.tls_cert_file is not None:  # browsers remember to use HTTPS only (RFC 6797)
        headers["Strict-Transport-Security"] = "max-age=31536000"
    app.add_middleware(SecurityHeaders, headers=headers)
    app.add_middleware(RequestContext)
    install_problem_handlers(app, outages)
    for module in (
        routes_alerts,
        routes_feed,
        routes_ledger,
        routes_meta,
        routes_reshare,
        routes_retention,
        routes_statistics,
        routes_search,
        routes_uploads,
    ):
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    routes_taxii.install(app)  # read-only TAXII 2.1 at /taxii2/ (docs/stix-mapping.md)
