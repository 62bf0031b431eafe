"""The live feed as Server-Sent Events frames, the same for every edge that serves it.

``api`` serves it at ``/v1/feed/stream`` under a bearer token and ``web`` at ``/analyst/stream``
under the session cookie; both hand the frames to a streaming response. A frame's ``id:`` is the
feed position, so a reconnecting client resumes with ``Last-Event-ID``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

from blo_exchange.domain.directory import Principal
from blo_exchange.services.feed import FeedService

__all__ = ["HEARTBEAT_SECONDS", "MAX_POSITION", "resume_position", "sse_frames"]

HEARTBEAT_SECONDS = 15.0
MAX_POSITION = 2**63 - 1  # positions are Postgres bigints


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
) -> AsyncIterator[bytes]:
    position = start
    yield b"retry: 2000\n\n"
    while not await disconnected():
        page = await feed.live(principal, cursor=position)
        for seq, data in page.items:
            yield f"id: {seq}\nevent: alert\ndata: {data}\n\n".encode()
        position = page.next_cursor
        if not page.items and not await feed.wait(HEARTBEAT_SECONDS):
            yield b": keep-alive\n\n"
