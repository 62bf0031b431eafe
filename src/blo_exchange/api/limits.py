"""Limits on what one caller can make a node do: request body size, request rate, open streams.

The body limit is pure ASGI, so it also holds for chunked uploads that announce no length. The
rate limit is a token bucket per principal, in this process: behind a balancer each node process
keeps its own buckets, so the effective limit is the per-process one times the processes.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from blo_exchange.errors import RateLimited

__all__ = ["BodyLimit", "RateLimiter", "SecurityHeaders"]


class SecurityHeaders:
    """Add headers to every response that does not set them itself.

    Pure ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware costs a
    task and a stream copy per request, a tenth of the accept path's CPU (bench/, profile).
    """

    def __init__(self, app: ASGIApp, *, headers: dict[str, str]) -> None:
        self._app = app
        self._headers = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in self._headers if k not in present]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self._app(scope, receive, send_with_headers)


class BodyLimit:
    """Refuse bodies over ``max_bytes`` with 413, whether announced or streamed."""

    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self._app = app
        self._max = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        for name, value in scope.get("headers", []):
            if name == b"content-length" and (not value.isdigit() or int(value) > self._max):
                await self._refuse(send)
                return
        seen = 0
        refused = False

        async def limited_receive() -> Message:
            # Past the limit, answer 413 ourselves and tell the app the client went away: it
            # stops reading, and whatever it then tries to send is dropped.
            nonlocal seen, refused
            if refused:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self._max:
                    refused = True
                    await self._refuse(send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self._app(scope, limited_receive, guarded_send)
        except ClientDisconnect:
            if not refused:
                raise

    async def _refuse(self, send: Send) -> None:
        body = json.dumps(
            {
                "type": "about:blank",
                "title": "Payload too large",
                "status": 413,
                "detail": f"request bodies are limited to {self._max} bytes",
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/problem+json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """``rate`` requests per second per key, bursts up to ``burst``; 429 with Retry-After."""

    def __init__(
        self, *, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._rate = rate
        self._burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}

    def take(self, key: str) -> None:
        """One request; refused (429) while the bucket holds less than a token."""
        if self._rate <= 0:
            return
        bucket = self._refilled(key)
        if bucket.tokens < 1.0:
            retry_after = max(1, math.ceil((1.0 - bucket.tokens) / self._rate))
            raise RateLimited(f"too many requests; retry in {retry_after} s", retry_after)
        bucket.tokens -= 1.0
        if len(self._buckets) > 10_000:  # principals are few; this only bounds memory
            self._forget_full(bucket.updated)

    def charge(self, key: str, cost: float) -> None:
        """Spend ``cost`` more for a request already let in (each further item of a batch).
        It may leave the bucket in debt: a batch larger than the burst still goes through
        once, and the principal's next requests wait until the debt is paid."""
        if self._rate > 0 and cost > 0:
            self._refilled(key).tokens -= cost

    def _refilled(self, key: str) -> _Bucket:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(tokens=float(self._burst), updated=now)
        bucket.tokens = min(self._burst, bucket.tokens + (now - bucket.updated) * self._rate)
        bucket.updated = now
        return bucket

    def _forget_full(self, now: float) -> None:
        horizon = self._burst / self._rate
        for key in [k for k, b in self._buckets.items() if now - b.updated > horizon]:
            del self._buckets[key]
