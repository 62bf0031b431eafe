"""A node's app on a real uvicorn server on a free port, with the options ``serve`` uses."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn

from blo_exchange.bootstrap.app import create_app
from blo_exchange.cli.main import server_options
from blo_exchange.config import Settings
from blo_exchange.embedded import free_port
from blo_exchange.services.registry import Services
from tests.integration.pipeline import eventually


@asynccontextmanager
async def served(settings: Settings, services: Services, **overrides: Any) -> AsyncIterator[int]:
    """Serve the node of ``services`` with ``settings`` (its TLS, its protocol; ``overrides``
    replace uvicorn options) on 127.0.0.1; yields the port and stops the server on exit."""
    port = free_port()
    config = uvicorn.Config(
        create_app(settings, services=services),
        host="127.0.0.1",
        port=port,
        lifespan="off",
        **server_options(settings) | overrides,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())

    async def started() -> bool:
        return bool(server.started)

    try:
        await eventually(started, what="the node's server")
        yield port
    finally:
        server.should_exit = True
        await serving
