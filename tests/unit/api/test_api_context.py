"""Request ids in responses and in every JSON log line written while serving a request."""

from __future__ import annotations

import io
import json
import logging

import httpx
from fastapi import FastAPI

from blo_exchange.api.context import RequestContext


def app() -> RequestContext:
    inner = FastAPI()

    @inner.get("/work")
    async def work() -> dict[str, str]:
        logging.getLogger("blo_exchange.test").warning(
            "rejected message", extra={"alert_id": "01a2-x", "reason": "bad_signature"}
        )
        return {}

    return RequestContext(inner)


async def test_every_line_of_a_request_carries_its_id(captured: io.StringIO) -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        response = await client.get("/work")
        given = await client.get("/work", headers={"X-Request-ID": "terminal-42-abcdef"})
        insane = await client.get("/work", headers={"X-Request-ID": "x\nforged"})
    request_id = response.headers["x-request-id"]
    assert len(request_id) == 32
    assert given.headers["x-request-id"] == "terminal-42-abcdef"
    assert insane.headers["x-request-id"] != "x\nforged"

    lines = [json.loads(line) for line in captured.getvalue().splitlines()]
    first = [line for line in lines if line.get("request_id") == request_id]
    assert [line["logger"] for line in first] == ["blo_exchange.test", "blo_exchange.access"]
    assert first[0]["alert_id"] == "01a2-x"
    assert first[0]["reason"] == "bad_signature"
    assert first[0]["level"] == "warning"
    assert first[1]["status"] == 200
    assert first[1]["msg"] == "GET /work 200"
