"""No request waits on a thread: FastAPI runs a plain ``def`` endpoint or dependency in its
thread pool, two thread switches on every request that uses it (issue 14: the node's service
dependency did that on every accept)."""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from typing import Any

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from blo_exchange.bootstrap.app import create_app
from blo_exchange.config import Settings


def _routes(routes: list[Any]) -> Iterator[APIRoute]:
    """Every API route, also those of included routers (wrapped, in this FastAPI)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif (included := getattr(route, "original_router", None)) is not None:
            yield from _routes(included.routes)


def _calls(dependant: Dependant) -> Iterator[tuple[str, object]]:
    for dependency in dependant.dependencies:
        yield from _calls(dependency)
    if dependant.call is not None:
        yield getattr(dependant.call, "__qualname__", repr(dependant.call)), dependant.call


def _runs_on_the_loop(call: object) -> bool:
    if inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call):
        return True
    dunder = getattr(call, "__call__", None)  # noqa: B004 - a callable instance's method
    return inspect.iscoroutinefunction(dunder)


def test_every_endpoint_and_dependency_runs_on_the_event_loop() -> None:
    app = create_app(Settings(node_id="blo-test-kg"))
    routes = list(_routes(app.routes))
    assert len(routes) > 40  # the whole API, TAXII included
    on_threads = {
        f"{sorted(route.methods)[0]} {route.path}: {name}"
        for route in routes
        for name, call in _calls(route.dependant)
        if not _runs_on_the_loop(call)
    }
    assert on_threads == set()
