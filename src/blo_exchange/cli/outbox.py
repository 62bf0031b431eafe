"""A terminal's outbox: alerts queued on the terminal's own disk until a node acknowledged them.

A border post's link drops for hours and its terminal gets rebooted; an alert the officer wrote
must neither be lost nor sent twice. Each alert is stored (SQLite, WAL, ``synchronous=FULL``: the
commit is fsynced) with its ``Idempotency-Key`` *before* the first attempt, and every retry uses
that key, so the node turns a retry of an alert it already took into a replay of its first 202.

An item ends ``accepted`` (a 202) or ``refused`` (a 4xx other than 409 and 429: the alert itself is
wrong; the answer is kept for the officer). Anything else — no connection, a timeout, a 5xx, 409
"in progress", 429 — leaves it ``pending`` for the next flush.

Not for: encryption at rest. The queue holds alerts in clear, personal data included, exactly as
the officer typed them; the file is created 0600 and belongs on the terminal's encrypted disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

if TYPE_CHECKING:
    import httpx

__all__ = ["FlushReport", "Outbox", "OutboxItem", "flush", "key_for"]

State = Literal["pending", "accepted", "refused"]

BATCH = 50  # items per POST /v1/alerts:batch
_RETRYABLE = frozenset({409, 429})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    key         TEXT NOT NULL UNIQUE,
    body        TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    attempts    INTEGER NOT NULL DEFAULT 0,
    status      INTEGER,
    answer      TEXT,
    enqueued_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL
)
"""


@dataclass(frozen=True)
class OutboxItem:
    seq: int
    key: str
    body: dict[str, Any]
    state: State
    attempts: int
    status: int | None  # the last HTTP status, None before any answer
    answer: dict[str, Any] | None  # the 202's body, or the refusal's problem details
    enqueued_at: str
    updated_at: str


@dataclass
class FlushReport:
    accepted: int = 0
    refused: int = 0
    pending: int = 0
    rounds: int = 0
    last_error: str | None = None


def key_for(body: dict[str, Any]) -> str:
    """The default Idempotency-Key: a digest of the alert, so sending the same file again (the
    officer is not sure it went before a reboot) queues nothing new."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "outbox-" + hashlib.sha256(canonical.encode()).hexdigest()[:40]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class Outbox:
    """The queue in one SQLite file. Not shared between threads; one process at a time writes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Created 0600 before SQLite opens it: the queue holds alerts in clear.
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        import sqlite3  # here, not at import: a serving process imports the CLI, never this

        self._db = sqlite3.connect(self.path, isolation_level=None, timeout=30.0)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # in WAL mode: fsync at every commit
        self._db.execute(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def enqueue(self, body: dict[str, Any], key: str | None = None) -> tuple[str, bool]:
        """Queue ``body`` under ``key`` (default :func:`key_for`); False if the key was queued."""
        key = key or key_for(body)
        now = _now()
        cursor = self._db.execute(
            "INSERT INTO outbox (key, body, enqueued_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (key) DO NOTHING",
            (key, json.dumps(body, ensure_ascii=False), now, now),
        )
        return key, cursor.rowcount == 1

    def items(self, state: State | None = None) -> list[OutboxItem]:
        if state is None:
            return list(self._rows("SELECT * FROM outbox ORDER BY seq", ()))
        return list(self._rows("SELECT * FROM outbox WHERE state = ? ORDER BY seq", (state,)))

    def get(self, key: str) -> OutboxItem | None:
        return next(self._rows("SELECT * FROM outbox WHERE key = ?", (key,)), None)

    def record(
        self, key: str, *, state: State, status: int | None, answer: dict[str, Any] | None
    ) -> None:
        self._db.execute(
            "UPDATE outbox SET state = ?, status = ?, answer = ?, attempts = attempts + 1, "
            "updated_at = ? WHERE key = ? AND state = 'pending'",
            (state, status, None if answer is None else json.dumps(answer), _now(), key),
        )

    def _rows(self, query: str, params: tuple[Any, ...]) -> Iterator[OutboxItem]:
        for row in self._db.execute(query, params).fetchall():
            yield OutboxItem(
                seq=row["seq"],
                key=row["key"],
                body=json.loads(row["body"]),
                state=row["state"],
                attempts=row["attempts"],
                status=row["status"],
                answer=None if row["answer"] is None else json.loads(row["answer"]),
                enqueued_at=row["enqueued_at"],
                updated_at=row["updated_at"],
            )


async def flush(
    outbox: Outbox,
    url: str,
    token: str,
    *,
    retry_for: float = 0.0,
    timeout: float = 30.0,
    transport: httpx.AsyncBaseTransport | None = None,
    verify: ssl.SSLContext | bool = True,
) -> FlushReport:
    """Send every pending item, oldest first, in batches; retry for ``retry_for`` seconds more
    while some stay pending (with a growing pause, at most 5 s). Returns what is left."""
    import httpx

    report = FlushReport()
    deadline = time.monotonic() + retry_for
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=url, headers=headers, timeout=timeout, transport=transport, verify=verify
    ) as client:
        for attempt in range(10_000):
            report.rounds += 1
            await _one_round(outbox, client, report)
            if not outbox.items("pending") or time.monotonic() >= deadline:
                break
            pause = min(5.0, 0.25 * 2**attempt, max(0.0, deadline - time.monotonic()))
            await asyncio.sleep(pause)
    report.pending = len(outbox.items("pending"))
    return report


async def _one_round(outbox: Outbox, client: httpx.AsyncClient, report: FlushReport) -> None:
    import httpx

    pending = outbox.items("pending")
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        payload = {"alerts": [{"idempotency_key": i.key, "alert": i.body} for i in chunk]}
        try:
            response = await client.post("/v1/alerts:batch", json=payload)
        except httpx.HTTPError as exc:
            report.last_error = f"{type(exc).__name__}: {exc}"
            return  # the link is down: the rest waits for the next round
        if response.status_code != 200:
            # The whole request failed (node trouble, or a bad token): no item's own fault, so
            # none is refused; they wait for the next round.
            report.last_error = f"HTTP {response.status_code}"
            return
        for item, result in zip(chunk, response.json()["results"], strict=True):
            status = int(result["status"])
            if status == 202:
                answer = {k: v for k, v in result.items() if k not in ("index", "status")}
                outbox.record(item.key, state="accepted", status=status, answer=answer)
                report.accepted += 1
            elif _refused(status):
                answer = {"detail": result.get("detail")}
                outbox.record(item.key, state="refused", status=status, answer=answer)
                report.refused += 1
            else:
                outbox.record(item.key, state="pending", status=status, answer=None)
                report.last_error = f"HTTP {status}: {result.get('detail')}"


def _refused(status: int) -> bool:
    return 400 <= status < 500 and status not in _RETRYABLE
