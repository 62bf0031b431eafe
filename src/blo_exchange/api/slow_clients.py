"""Read deadlines for slow clients, at the HTTP protocol level (uvicorn's httptools protocol,
or its h11 one where httptools is not installed).

uvicorn times out only an idle keep-alive connection, and any byte resets that timer, so a client
that sends a header line every few seconds (slowloris) or a body a byte at a time holds its
connection, and a file descriptor, forever. This protocol closes a connection when:

1. a request's headers are not complete ``header_seconds`` after its first byte (or, on a new
   connection, after connecting): headers are small, even a slow border link sends them in well
   under a second;
2. a request's body stalls: no bytes for ``body_idle_seconds``. A stall, not a total: a 4 MiB
   batch over a slow satellite link may take minutes and is fine while it keeps moving.

Not covered: slow readers of a response (SSE streams are long-lived by design; each principal's
are capped in ``services.feed_events.StreamSlots``), and HTTP/2 (not served).
"""

from __future__ import annotations

import asyncio
import importlib.util

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

__all__ = ["GuardedH11Protocol", "guarded_protocol"]


class _Deadline:
    """The timer both protocols arm and disarm."""

    header_seconds = 10.0
    body_idle_seconds = 15.0
    _guard: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._guard = self.loop.call_later(seconds, self._too_slow)

    def _disarm(self) -> None:
        if self._guard is not None:
            self._guard.cancel()
            self._guard = None

    def _too_slow(self) -> None:
        self._guard = None
        if not self.transport.is_closing():
            self.transport.close()


class GuardedH11Protocol(_Deadline, H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm(self.header_seconds)

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        state = self.conn.their_state
        if state is h11.IDLE:
            if self._guard is None:  # the first bytes of the next request: headers from now
                self._arm(self.header_seconds)
        elif state is h11.SEND_BODY:
            self._arm(self.body_idle_seconds)  # every chunk re-arms: a stall, not a total
        else:
            self._disarm()

    def on_response_complete(self) -> None:
        self._disarm()  # the keep-alive timer covers the wait for the next request
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    """The same deadlines on uvicorn's httptools protocol: its C parser costs less CPU per
    request than h11 (``make bench``, issue 14). Its callbacks mark the same states: a request's
    first byte, its headers complete, each body chunk, the request complete."""
    if importlib.util.find_spec("httptools") is None:
        return None
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class GuardedHttpToolsProtocol(_Deadline, HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm(self.header_seconds)

        def on_message_begin(self) -> None:
            if self._guard is None:  # the first bytes of the next request: headers from now
                self._arm(self.header_seconds)
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._arm(self.body_idle_seconds)  # until the body, if any, is complete
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            self._arm(self.body_idle_seconds)  # every chunk re-arms: a stall, not a total
            super().on_body(body)

        def on_message_complete(self) -> None:
            self._disarm()
            super().on_message_complete()

        def on_response_complete(self) -> None:
            self._disarm()  # the keep-alive timer covers the wait for the next request
            super().on_response_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return GuardedHttpToolsProtocol


def guarded_protocol(
    *,
    header_seconds: float,
    body_idle_seconds: float,
    parser: str | None = None,
    mixins: tuple[type, ...] = (),
) -> type[asyncio.Protocol]:
    """The guarded protocol with these deadlines, for uvicorn's ``http=`` option: on httptools
    where it is installed (or ``parser="httptools"``), else (or ``parser="h11"``) on h11.
    ``mixins`` go in front of it (e.g. ``api.client_certificates.PeerCertificateProtocol``)."""
    base = None if parser == "h11" else _httptools_protocol()
    if base is None and parser == "httptools":
        raise RuntimeError("httptools is not installed")
    base = base or GuardedH11Protocol
    return type(
        base.__name__,
        (*mixins, base),
        {"header_seconds": header_seconds, "body_idle_seconds": body_idle_seconds},
    )
