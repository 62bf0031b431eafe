"""The node's FastAPI application, built by :func:`create_app` from settings.

Everything stateful (database pool, NATS connection, keys, consumers) is created in the lifespan,
never at import, and torn down when the server stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from blo_exchange import __version__, web
from blo_exchange.api import routes_alerts, routes_feed, routes_ledger, routes_meta, routes_reshare
from blo_exchange.api.context import RequestContext
from blo_exchange.api.limits import BodyLimit, RateLimiter, SecurityHeaders, StreamSlots
from blo_exchange.api.problems import PROBLEM_RESPONSES, install_problem_handlers
from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.config import Settings

__all__ = ["MAX_BODY_BYTES", "create_app"]

MAX_BODY_BYTES = 4 * 1024 * 1024  # a 500-alert batch fits; a runaway upload does not

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
}


def create_app(settings: Settings, *, runtime: NodeRuntime | None = None) -> FastAPI:
    """The node's app. With ``runtime`` (tests), the caller owns that runtime's life."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = await NodeRuntime.start(settings)
        app.state.runtime = started
        try:
            yield
        finally:
            await started.stop()

    app = FastAPI(
        title="blo-exchange node",
        version=__version__,
        description="Secure inter-agency alert exchange for Border Liaison Offices.",
        lifespan=lifespan if runtime is None else None,
    )
    if runtime is not None:
        app.state.runtime = runtime
    app.state.settings = settings
    app.state.limiter = RateLimiter(rate=settings.rate_limit, burst=settings.rate_burst)
    # Sign-in, per address and per principal: ten tries, then one every six seconds.
    app.state.signin_limiter = RateLimiter(rate=1 / 6, burst=10)
    app.state.stream_slots = StreamSlots(per_key=routes_feed.STREAMS_PER_PRINCIPAL)
    # Outermost last: security headers also go on the body limit's own 413.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    headers = dict(SECURITY_HEADERS)
    if settings.tls_cert_file is not None:  # browsers remember to use HTTPS only (RFC 6797)
        headers["Strict-Transport-Security"] = "max-age=31536000"
    app.add_middleware(SecurityHeaders, headers=headers)
    app.add_middleware(RequestContext)
    install_problem_handlers(app)

    for module in (routes_alerts, routes_feed, routes_ledger, routes_meta, routes_reshare):
        app.include_router(module.router, responses=PROBLEM_RESPONSES)
    web.install(app)  # the pages at / and their static files (blo_exchange.web)
    return app
