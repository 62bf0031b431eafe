"""The node's FastAPI application, built by :func:`create_app` from settings.

Everything stateful (database pool, NATS connection, keys, consumers) is created in the lifespan,
never at import, and torn down when the server stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from blo_exchange import __version__
from blo_exchange.api import routes_alerts, routes_feed, routes_ledger, routes_meta
from blo_exchange.api.limits import BodyLimit, RateLimiter
from blo_exchange.api.problems import install_problem_handlers
from blo_exchange.assembly.node import NodeRuntime
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
    app.state.limiter = RateLimiter(rate=settings.rate_limit, burst=settings.rate_burst)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    install_problem_handlers(app)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    for module in (routes_alerts, routes_feed, routes_ledger, routes_meta):
        app.include_router(module.router)
    return app
