"""The node's FastAPI application, built by :func:`create_app` from settings: the JSON API
(``api``) and the pages (``web``) over one running node.

Everything stateful (database pool, NATS connection, keys, consumers) is created in the lifespan,
never at import, and torn down when the server stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from blo_exchange import __version__, api, web
from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.bootstrap.outages import ADAPTER_OUTAGES
from blo_exchange.config import Settings
from blo_exchange.services.outages import Outages
from blo_exchange.services.registry import Services

__all__ = ["create_app"]


def create_app(settings: Settings, *, services: Services | None = None) -> FastAPI:
    """The node's app. With ``services`` (tests: a running node's, or fakes), the caller owns
    the node's life; without, the app starts and stops its own node."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        started = await NodeRuntime.start(settings)
        app.state.services = started.services
        try:
            yield
        finally:
            await started.stop()

    app = FastAPI(
        title="blo-exchange node",
        version=__version__,
        description="Secure inter-agency alert exchange for Border Liaison Offices.",
        lifespan=lifespan if services is None else None,
    )
    if services is not None:
        if not services.has(Outages):
            services.add(Outages, ADAPTER_OUTAGES)
        app.state.services = services
    api.install(app, settings, ADAPTER_OUTAGES)
    web.install(app)  # the pages at / and their static files
    return app
