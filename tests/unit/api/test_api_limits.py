"""Body size, request rate and open-stream limits."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI, Request, Response

from blo_exchange.api.limits import BodyLimit, RateLimiter, SecurityHeaders
from blo_exchange.errors import RateLimited
from blo_exchange.services.feed_events import StreamSlots


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_a_burst_then_refuses_with_retry_after() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=2.0, burst=5, clock=clock)
    for _ in range(5):
        limiter.take("terminal-1")
    with pytest.raises(RateLimited) as refused:
        limiter.take("terminal-1")
    assert refused.value.retry_after == 1
    limiter.take("analyst-1")  # buckets are per principal
    clock.now += 0.5  # one token back at 2/s
    limiter.take("terminal-1")
    with pytest.raises(RateLimited):
        limiter.take("terminal-1")


def test_a_batch_pays_for_every_item_even_into_debt() -> None:
    clock = FakeClock()
    limiter = RateLimiter(rate=10.0, burst=20, clock=clock)
    limiter.take("terminal-1")
    limiter.charge("terminal-1", 499)  # the rest of a 500-item batch
    with pytest.raises(RateLimited) as refused:
        limiter.take("terminal-1")
    assert refused.value.retry_after == 49  # 480 tokens of debt, paid back at 10/s
    clock.now += 49
    limiter.take("terminal-1")


def test_streams_are_capped_per_principal() -> None:
    slots = StreamSlots(per_key=2)
    slots.acquire("analyst-1")
    slots.acquire("analyst-1")
    with pytest.raises(RateLimited):
        slots.acquire("analyst-1")
    slots.acquire("analyst-2")
    slots.release("analyst-1")
    slots.acquire("analyst-1")
    assert slots.open("analyst-1") == 2


def test_zero_rate_means_no_limit() -> None:
    limiter = RateLimiter(rate=0, burst=0)
    for _ in range(1000):
        limiter.take("anyone")


def echo_app(limit: int) -> BodyLimit:
    app = FastAPI()

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"received": len(await request.body())}

    return BodyLimit(app, max_bytes=limit)


async def chunks(total: int, size: int = 1000) -> AsyncIterator[bytes]:
    for start in range(0, total, size):
        yield b"x" * min(size, total - start)


@pytest.mark.parametrize(("length", "status"), [(999, 200), (1000, 200), (1001, 413)])
async def test_announced_length(length: int, status: int) -> None:
    transport = httpx.ASGITransport(app=echo_app(1000))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        response = await client.post("/echo", content=b"x" * length)
    assert response.status_code == status
    if status == 413:
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 413


async def test_streamed_body_without_length_is_cut_off() -> None:
    transport = httpx.ASGITransport(app=echo_app(5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        ok = await client.post("/echo", content=chunks(4000))
        too_big = await client.post("/echo", content=chunks(50_000))
    assert ok.json() == {"received": 4000}
    assert too_big.status_code == 413


async def test_security_headers_are_added_unless_the_response_sets_them() -> None:
    app = FastAPI()

    @app.get("/plain")
    async def plain() -> dict[str, str]:
        return {}

    @app.get("/framed")
    async def framed() -> Response:
        return Response(headers={"X-Frame-Options": "SAMEORIGIN"})

    wrapped = SecurityHeaders(app, headers={"X-Frame-Options": "DENY", "X-Test": "1"})
    transport = httpx.ASGITransport(app=wrapped)
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as client:
        plain_response = await client.get("/plain")
        framed_response = await client.get("/framed")
    assert plain_response.headers["x-frame-options"] == "DENY"
    assert plain_response.headers["x-test"] == "1"
    assert framed_response.headers.get_list("x-frame-options") == ["SAMEORIGIN"]
