"""The live feed as Server-Sent Events frames, the same for every edge that serves it.

``api`` serves it at ``/v1/feed/stream`` under a bearer token and ``web`` at ``/analyst/stream``
under the session cookie; both hand the frames to a streaming response. A frame's ``id:`` is the
feed position, so a reconnecting client resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

from blo_exchange.domain.directory import Principal
from blo_exchange.services.feed import FeedService
from blo_exchange.services.outages import Outages

__all__ = ["HEARTBEAT_SECONDS", "MAX_POSITION", "resume_position", "sse_frames"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
OUTAGE_PAUSE = 1.0
"""Seconds an open stream waits before asking again while a dependency is down: it stays open."""
MAX_POSITION = 2**63 - 1  # feed positions are Postgres bigints


def resume_position(cursor: int, last_event_id: str | None) -> int:
    """Where a stream starts: after ``Last-Event-ID`` when the client sent one, else ``cursor``."""
    if last_event_id is not None and last_event_id.strip().isdigit():
        return min(int(last_event_id.strip()), MAX_POSITION)
    return cursor


async def sse_frames(
    feed: FeedService,
    principal: Principal,
    *,
    start: int,
    disconnected: Callable[[], Awaitable[bool]],
    outages: Outages,
) -> AsyncIterator[bytes]:
    position = start
    yield b"retry: 2000\n\n"
    while not await disconnected():
        try:
            page = await feed.live(principal, cursor=position)
        except outages.errors as exc:
            if outages.classify(exc) is None:
                raise
            # Headers are sent: no 503 now. Keep the stream, say why it is quiet, and go on
            # from the same position once the dependency answers again.
            log.warning("feed stream paused: %s", type(exc).__name__)
            yield b": unavailable\n\n"
            await asyncio.sleep(OUTAGE_PAUSE)
            continue
        for seq, data in page.items:
            yield f"id: {seq}\nevent: alert\ndata: {data}\n\n".encode()
        position = page.next_cursor
        if not page.items and not await feed.wait(HEARTBEAT_SECONDS):
            yield b": keep-alive\n\n"
