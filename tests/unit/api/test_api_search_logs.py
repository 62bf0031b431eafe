"""A searched name stays out of the node's logs: the access line has the path, not the query."""

from __future__ import annotations

import io
from urllib.parse import quote

import httpx
from fastapi import FastAPI

from blo_exchange.api.context import RequestContext

NAME = "Рахимов"


async def test_a_search_query_is_not_in_the_access_log(captured: io.StringIO) -> None:
    inner = FastAPI()

    @inner.get("/v1/search")
    async def search(q: str) -> dict[str, str]:
        return {}

    transport = httpx.ASGITransport(app=RequestContext(inner))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        response = await client.get("/v1/search", params={"field": "person", "q": NAME})
    assert response.status_code == 200
    text = captured.getvalue()
    assert "/v1/search" in text  # the access line is there...
    for form in (NAME, quote(NAME), NAME.encode("unicode_escape").decode()):
        assert form not in text  # ...without the name, in any encoding
