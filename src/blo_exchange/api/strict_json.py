"""JSON request bodies parsed strictly: a repeated key or a NaN/Infinity is a decode error.

Python's ``json`` keeps the last of repeated keys, so ``{"tlp": "RED", "tlp": "CLEAR"}`` is
read as CLEAR here while a proxy, a log reader or another JSON library may read RED; refusing
the body removes that ambiguity (RFC 8259 §4 leaves it to the parser; I-JSON, RFC 7493 §2.3,
forbids it). NaN and Infinity are not JSON at all. Both become FastAPI's own ``json_invalid``
error, a 422 like any other malformed body.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

__all__ = ["StrictJsonRoute", "loads_strict"]


def _object(doc: str) -> Callable[[list[tuple[str, Any]]], dict[str, Any]]:
    def build(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in pairs:
            if key in result:
                raise json.JSONDecodeError(f"duplicate key {key[:64]!r}", doc, 0)
            result[key] = value
        return result

    return build


def _constant(doc: str) -> Callable[[str], Any]:
    def refuse(name: str) -> Any:
        raise json.JSONDecodeError(f"{name} is not JSON", doc, 0)

    return refuse


def loads_strict(body: bytes | str) -> Any:
    """``json.loads`` that refuses repeated keys and NaN/Infinity with ``JSONDecodeError``."""
    try:
        doc = body.decode("utf-8") if isinstance(body, bytes) else body
    except UnicodeDecodeError:
        raise json.JSONDecodeError("the body is not UTF-8", "", 0) from None
    return json.loads(doc, object_pairs_hook=_object(doc), parse_constant=_constant(doc))


class _StrictRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """A route whose JSON body is read with :func:`loads_strict`."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def strict(request: Request) -> Response:
            return await handler(_StrictRequest(request.scope, request.receive))

        return strict
