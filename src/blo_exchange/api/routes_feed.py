"""``/v1/feed``: an analyst's alerts, decrypted, as pages or as a live Server-Sent Events stream."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse

from blo_exchange.api.deps import CurrentPrincipal, service, services_of
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feed_events import MAX_POSITION, resume_position, sse_frames
from blo_exchange.services.outages import Outages

__all__ = ["router"]


router = APIRouter(prefix="/v1", tags=["feed"])

Feed = Annotated[FeedService, Depends(service(FeedService))]


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
    feed: Feed,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    cursor: Annotated[int, Query(ge=0, le=MAX_POSITION)] = 0,
) -> StreamingResponse:
    """SSE: ``id:`` is the feed position, so a reconnecting client resumes with Last-Event-ID
    exactly after the last alert it got, alerts stored late included."""
    feed.require_analyst(principal)
    frames = sse_frames(
        feed,
        principal,
        start=resume_position(cursor, last_event_id),
        disconnected=request.is_disconnected,
        outages=services_of(request).get(Outages),
    )
    return StreamingResponse(
        frames,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
