"""``/v1/feed``: an analyst's alerts, decrypted, as pages or as a live Server-Sent Events stream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from blo_exchange.api.deps import CurrentPrincipal, Runtime
from blo_exchange.bus.connection import BUS_ERRORS
from blo_exchange.db.engine import DATABASE_ERRORS

__all__ = ["router"]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1", tags=["feed"])

HEARTBEAT_SECONDS = 15.0
OUTAGE_PAUSE = 1.0
"""Seconds an open stream waits before asking again while Postgres is down: it stays open."""
MAX_SEQ = 2**63 - 1  # feed positions are Postgres bigints


@router.get("/feed")
async def feed(
    principal: CurrentPrincipal,
    runtime: Runtime,
    cursor: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Alerts addressed to the caller's agency stored after position ``cursor``, in the order this
    node stored them; ``next_cursor`` is the last one's position. Paging on with it never skips
    an alert, however late one arrived (positions are the node's, not the stream's)."""
    page = await runtime.feed.page(principal, cursor=cursor, limit=limit)
    return {"items": page.items, "next_cursor": page.next_cursor}


@router.get("/feed/stream", response_class=StreamingResponse)
async def feed_stream(
    request: Request,
    principal: CurrentPrincipal,
    runtime: Runtime,
    last_event_id: Annotated[str | None, Header(max_length=20)] = None,
    cursor: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
) -> StreamingResponse:
    """SSE: ``id:`` is the feed position, so a reconnecting client resumes with Last-Event-ID
    exactly after the last alert it got, alerts stored late included."""
    runtime.feed.require_analyst(principal)
    start = cursor
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = min(int(last_event_id.strip()), MAX_SEQ)

    async def events() -> AsyncIterator[bytes]:
        position = start
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            try:
                page = await runtime.feed.live(principal, cursor=position)
            except (*DATABASE_ERRORS, *BUS_ERRORS) as exc:
                # Headers are sent: no 503 now. Keep the stream, say why it is quiet, and go on
                # from the same position once the database answers again.
                log.warning("feed stream paused: %s", type(exc).__name__)
                yield b": unavailable\n\n"
                await asyncio.sleep(OUTAGE_PAUSE)
                continue
            for seq, data in page.items:
                yield f"id: {seq}\nevent: alert\ndata: {data}\n\n".encode()
            position = page.next_cursor
            if not page.items and not await runtime.feed.wait(HEARTBEAT_SECONDS):
                yield b": keep-alive\n\n"

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
