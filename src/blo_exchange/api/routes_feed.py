"""``/v1/feed``: an analyst's alerts, decrypted, as pages or as a live Server-Sent Events stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from blo_exchange.api.deps import CurrentPrincipal, authenticate_request, service
from blo_exchange.errors import Unauthenticated
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feed_events import (
    MAX_POSITION,
    SSE_HEADERS,
    FeedStreams,
    resume_position,
)

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["feed"])

Feed = Annotated[FeedService, Depends(service(FeedService))]
Streams = Annotated[FeedStreams, Depends(service(FeedStreams))]


@router.get("/feed")
async def feed(
    principal: CurrentPrincipal,
    feed: Feed,
    cursor: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Alerts addressed to the caller's agency stored after position ``cursor``, in the order this
    node stored them; ``next_cursor`` is the last one's position. Paging on with it never skips
    an alert, however late one arrived (positions are the node's, not the stream's)."""
    page = await feed.page(principal, cursor=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/feed/stream", response_class=StreamingResponse)
async def feed_stream(
    request: Request,
    principal: CurrentPrincipal,
    streams: Streams,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    cursor: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
) -> StreamingResponse:
    """SSE: ``id:`` is the feed position, so a reconnecting client resumes with Last-Event-ID
    exactly after the last alert it got, alerts stored late included. The stream ends when its
    credential is revoked or expires."""

    async def admitted() -> bool:
        try:
            await authenticate_request(request)
        except Unauthenticated:
            return False
        return True

    stream = streams.open(
        principal,
        start=resume_position(cursor, last_event_id),
        disconnected=request.is_disconnected,
        admitted=admitted,
    )
    # The background task gives the slot back too when the client left before the first event.
    return StreamingResponse(
        stream.frames,
        media_type="text/event-stream",
        headers=SSE_HEADERS,
        background=BackgroundTask(stream.close),
    )
