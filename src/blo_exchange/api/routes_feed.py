"""``/v1/feed``: an analyst's alerts, decrypted, as pages or as a live Server-Sent Events stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask

from blo_exchange.api.deps import CurrentPrincipal, Runtime, authenticate_request
from blo_exchange.api.limits import StreamSlots
from blo_exchange.domain.directory import Principal
from blo_exchange.errors import Unauthenticated

__all__ = ["open_feed_stream", "router"]

router = APIRouter(prefix="/v1", tags=["feed"])

HEARTBEAT_SECONDS = 15.0
RECHECK_SECONDS = 2.0  # the directory cache's interval: how stale a revocation may be
STREAMS_PER_PRINCIPAL = 4
MAX_SEQ = 2**63 - 1  # stream sequences are Postgres bigints


@router.get("/feed")
async def feed(
    principal: CurrentPrincipal,
    runtime: Runtime,
    cursor: Annotated[int, Query(ge=0, le=MAX_SEQ)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Alerts addressed to the caller's agency with stream sequence > ``cursor``, oldest first."""
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
    """SSE: ``id:`` is the stream sequence, so a reconnecting client resumes with Last-Event-ID.
    The stream ends when its credential is revoked or expires."""

    async def admitted() -> bool:
        try:
            await authenticate_request(request, runtime)
        except Unauthenticated:
            return False
        return True

    return open_feed_stream(
        request, principal, runtime, last_event_id=last_event_id, cursor=cursor, admitted=admitted
    )


def open_feed_stream(
    request: Request,
    principal: Principal,
    runtime: Runtime,
    *,
    last_event_id: str | None,
    cursor: int,
    admitted: Callable[[], Awaitable[bool]],
) -> StreamingResponse:
    """The SSE response of a feed, for the API (bearer token) and the pages (session cookie).

    In order: (1) only an analyst of this node's agency; (2) at most ``STREAMS_PER_PRINCIPAL``
    open at once; (3) ``admitted()`` (the credential, or the session, as of now) is asked before
    every batch of events and at least every ``RECHECK_SECONDS``: revocation, expiry and sign-out
    end the stream within that plus the directory cache's interval. Not done: sharing the
    decrypted catch-up pages between streams that start from an old cursor.
    """
    runtime.feed.require_analyst(principal)
    slots: StreamSlots | None = getattr(request.app.state, "stream_slots", None)
    if slots is not None:
        slots.acquire(principal.id)
    released = False

    def release() -> None:
        nonlocal released
        if slots is not None and not released:
            released = True
            slots.release(principal.id)

    start = cursor
    if last_event_id is not None and last_event_id.strip().isdigit():
        start = min(int(last_event_id.strip()), MAX_SEQ)

    async def events() -> AsyncIterator[bytes]:
        position = start
        quiet = 0.0
        try:
            yield b"retry: 2000\n\n"
            while not await request.is_disconnected() and await admitted():
                page = await runtime.feed.live(principal, cursor=position)
                for seq, data in page.items:
                    yield f"id: {seq}\nevent: alert\ndata: {data}\n\n".encode()
                position = page.next_cursor
                if page.items or await runtime.feed.wait(RECHECK_SECONDS):
                    quiet = 0.0
                    continue
                quiet += RECHECK_SECONDS
                if quiet >= HEARTBEAT_SECONDS:
                    quiet = 0.0
                    yield b": keep-alive\n\n"
        finally:
            release()

    # The background task releases the slot too when the client left before the first event.
    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        background=BackgroundTask(release),
    )
