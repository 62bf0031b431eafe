"""The live feed as Server-Sent Events, the same for every edge that serves it.

``api`` serves it at ``/v1/feed/stream`` under a bearer token and ``web`` at ``/analyst/stream``
under the session cookie; each hands :attr:`FeedStream.frames` to a streaming response and
:meth:`FeedStream.close` to run when it ends. A frame's ``id:`` is the feed position, so a
reconnecting client resumes with ``Last-Event-ID`` exactly after the last alert it got.

Opening a stream, in order: (1) only an analyst of this node's agency; (2) at most
``per_principal`` streams of one principal open at once in this process (429 past that). While it
is open: (3) ``admitted()`` — the credential or the session, as of now — is asked before a batch
of events once :data:`ADMITTED_EVERY` has passed since it was last asked, and at least every
``recheck`` seconds, so revocation, expiry and sign-out end the stream within that plus the
directory cache's interval (2 s); (4) an outage of a dependency keeps the stream open, quiet but
for a comment, and it goes on from the same position; (5) whether the client left is asked at
most every ``recheck`` seconds (the server ends a stream whose client left meanwhile: its
disconnect listener, or a failed write). Streams that start from an old cursor (a catch-up) read
the feed's shared opened frames like live ones (``services.feed_frames``): an alert is decrypted
once per node, not once per stream.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from blo_exchange.domain.directory import Principal
from blo_exchange.errors import RateLimited
from blo_exchange.services.feed import FeedService
from blo_exchange.services.outages import Outages

__all__ = [
    "ADMITTED_EVERY",
    "MAX_POSITION",
    "SSE_HEADERS",
    "FeedStream",
    "FeedStreams",
    "StreamSlots",
    "resume_position",
]

log = logging.getLogger(__name__)

MAX_POSITION = 2**63 - 1  # feed positions are Postgres bigints
SSE_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
OUTAGE_PAUSE = 1.0
"""Seconds an open stream waits before asking again while a dependency is down: it stays open."""


def resume_position(cursor: int, last_event_id: str | None) -> int:
    """Where a stream starts: after ``Last-Event-ID`` when the client sent one, else ``cursor``."""
    if last_event_id is not None and last_event_id.strip().isdigit():
        return min(int(last_event_id.strip()), MAX_POSITION)
    return cursor


class StreamSlots:
    """At most ``per_key`` open streams per principal in this process; 429 past that."""

    def __init__(self, *, per_key: int) -> None:
        self._per_key = per_key
        self._open: dict[str, int] = {}

    def acquire(self, key: str) -> None:
        if self._open.get(key, 0) >= self._per_key:
            raise RateLimited(f"at most {self._per_key} open streams per principal", 5)
        self._open[key] = self._open.get(key, 0) + 1

    def release(self, key: str) -> None:
        left = self._open.get(key, 0) - 1
        if left > 0:
            self._open[key] = left
        else:
            self._open.pop(key, None)

    def open(self, key: str) -> int:
        return self._open.get(key, 0)


class FeedStream:
    """One open stream: its frames, and :meth:`close` (idempotent) to give its slot back."""

    def __init__(self, frames: AsyncIterator[bytes], close: Callable[[], None]) -> None:
        self.frames = frames
        self.close = close


ADMITTED_EVERY = 0.5
"""Least seconds between two checks of a live stream's credential while its events flow."""


class FeedStreams:
    def __init__(
        self,
        feed: FeedService,
        outages: Outages,
        *,
        per_principal: int = 4,
        recheck: float = 2.0,
        heartbeat: float = 15.0,
    ) -> None:
        self._feed = feed
        self._outages = outages
        self.slots = StreamSlots(per_key=per_principal)
        self._recheck = recheck
        self._heartbeat = heartbeat

    def open(
        self,
        principal: Principal,
        *,
        start: int,
        disconnected: Callable[[], Awaitable[bool]],
        admitted: Callable[[], Awaitable[bool]],
    ) -> FeedStream:
        self._feed.require_analyst(principal)  # (1)
        self.slots.acquire(principal.id)  # (2)
        released = False

        def close() -> None:
            nonlocal released
            if not released:
                released = True
                self.slots.release(principal.id)

        async def frames() -> AsyncIterator[bytes]:
            try:
                async for frame in self._frames(principal, start, disconnected, admitted):
                    yield frame
            finally:
                close()

        return FeedStream(frames(), close)

    async def _frames(
        self,
        principal: Principal,
        start: int,
        disconnected: Callable[[], Awaitable[bool]],
        admitted: Callable[[], Awaitable[bool]],
    ) -> AsyncIterator[bytes]:
        position, quiet = start, 0.0
        left_asked = admitted_asked = -math.inf  # both at once the first time
        yield b"retry: 2000\n\n"
        # Whether the client left, asked at most every ``recheck`` seconds: a stream busy
        # writing learns it from the server meanwhile (Starlette's disconnect listener cancels
        # it; a write to a closed connection fails). The credential, at most every
        # ADMITTED_EVERY seconds: the directory's answer may be 2 s old anyway. Each asked after
        # every page was a tenth of a node's loop with a hundred streams (issue 14).
        while True:
            now = time.monotonic()
            if now - left_asked >= self._recheck:
                left_asked = now
                if await disconnected():
                    break
            if now - admitted_asked >= ADMITTED_EVERY:  # (3)
                admitted_asked = now
                if not await admitted():
                    break
            try:
                page = await self._feed.live(principal, cursor=position)
            except self._outages.errors as exc:  # (4)
                if self._outages.classify(exc) is None:
                    raise
                log.warning("feed stream paused: %s", type(exc).__name__)
                yield b": unavailable\n\n"
                await asyncio.sleep(OUTAGE_PAUSE)
                continue
            if page.items:
                # One write for the page, not one per event: with a hundred streams at a hundred
                # alerts a second, the writes are most of what fan-out costs.
                yield "".join(
                    f"id: {seq}\nevent: alert\ndata: {data}\n\n" for seq, data in page.items
                ).encode()
            position = page.next_cursor
            if page.items or await self._feed.wait(self._recheck):
                quiet = 0.0
                continue
            quiet += self._recheck
            if quiet >= self._heartbeat:
                quiet = 0.0
                yield b": keep-alive\n\n"
