"""What every load-generator task shares: HTTP/1.1 over raw asyncio streams, the
record of each 202, and percentiles. See ``bench.loadgen``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import resource
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from blo_exchange.domain.examples import EXAMPLE_SEIZURE

ALERT_BODY = json.dumps(EXAMPLE_SEIZURE, separators=(",", ":")).encode()
STREAM_SEQ = b'"stream_seq":'  # in each feed event's data


def process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict[str, Any]:
    """Latency summary in milliseconds."""
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50_ms": percentile(ms, 50),
        "p90_ms": percentile(ms, 90),
        "p99_ms": percentile(ms, 99),
        "max_ms": max(ms) if ms else None,
    }


KEEPALIVE_EXPIRY = 4.0
"""Seconds a client keeps an idle connection: less than the node's keep-alive (5 s), as httpx's
``keepalive_expiry`` does, so a request is never written into a connection the server is closing
(a slow open-loop poster over a pool of 32 met exactly that, and counted it as a reset)."""


class HttpConnection:
    """One keep-alive HTTP/1.1 connection; requests are sent one at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.idle_since = 0.0

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(
            self.host, self.port, limit=1 << 22
        )
        self.idle_since = time.monotonic()

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        if self.writer is not None and time.monotonic() - self.idle_since > KEEPALIVE_EXPIRY:
            await self.close()
        if self.writer is None:
            await self.connect()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(raw)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        at = lower.find(b"\r\ncontent-length:")
        if at >= 0:
            end = lower.index(b"\r\n", at + 2)
            body = await self.reader.readexactly(int(lower[at + 17 : end]))
        elif b"transfer-encoding: chunked" in lower:
            body = await self._chunked()
        else:
            body = b""
        if b"\r\nconnection: close" in lower:
            await self.close()
        self.idle_since = time.monotonic()
        return status, body

    async def _chunked(self) -> bytes:
        assert self.reader is not None
        parts = []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            data = await self.reader.readexactly(size + 2)
            if size == 0:
                return b"".join(parts)
            parts.append(data[:-2])


def raw_request(
    method: str, url: str, path: str, headers: dict[str, str], body: bytes = b""
) -> bytes:
    netloc = urlsplit(url).netloc
    lines = [f"{method} {path} HTTP/1.1", f"Host: {netloc}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body or method == "POST":
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def host_port(url: str) -> tuple[str, int]:
    parts = urlsplit(url)
    assert parts.hostname in ("127.0.0.1", "localhost", "::1"), "loopback only"
    return parts.hostname, int(parts.port or 80)


@dataclass
class Shared:
    """What tasks tell each other: 202s by stream seq and alert id, and when posting ended."""

    posted_seq: dict[int, float] = field(default_factory=dict)  # stream_seq -> t_202
    posted_id: dict[str, float] = field(default_factory=dict)  # alert_id -> t_202
    sent_seq: dict[int, float] = field(default_factory=dict)  # stream_seq -> t_request_sent
    owner_seq: dict[int, str] = field(default_factory=dict)  # stream_seq -> poster task name
    owner_id: dict[str, str] = field(default_factory=dict)  # alert_id -> poster task name
    posters_left: int = 0
    posting_started: asyncio.Event = field(default_factory=asyncio.Event)
    posting_done: asyncio.Event = field(default_factory=asyncio.Event)
    t0: float = 0.0

    def poster_finished(self) -> None:
        self.posters_left -= 1
        if self.posters_left <= 0:
            self.posting_done.set()


def record_202(
    shared: Shared, body: bytes, now: float, record: bool, owner: str, sent: float
) -> None:
    if record:
        doc = json.loads(body)
        record_event(shared, int(doc["stream_seq"]), str(doc["alert_id"]), now, owner, sent)


def record_event(
    shared: Shared, seq: int, alert_id: str, now: float, owner: str, sent: float
) -> None:
    shared.sent_seq[seq] = sent
    shared.posted_seq[seq] = now
    shared.posted_id[alert_id] = now
    shared.owner_seq[seq] = owner
    shared.owner_id[alert_id] = owner


def alert_request(task: dict[str, Any], headers: dict[str, str]) -> bytes:
    key = f"bench-{uuid.uuid4().hex}"
    return raw_request(
        "POST", task["url"], "/v1/alerts", headers | {"Idempotency-Key": key}, ALERT_BODY
    )


def alert_headers(task: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {task['token']}", "Content-Type": "application/json"}
