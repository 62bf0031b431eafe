"""One append for the batches several consumers hand the ledger writer at about the same time.

The writer has a consumer per stream (alerts, receipts, auditors' queries). Each fetched batch
used to be its own append transaction, journal fsync and checkpoint; at a few alerts a second the
batches hold one or two messages each, so that fixed cost was most of the writer's CPU (issue 14).
:class:`AppendBatcher` runs one append at a time: whatever was handed in while it ran is appended
together next, so batches grow with the load by themselves and nothing waits for a timer.

What it keeps: a caller returns only once the append holding its messages committed (it acks
after that), or raises when that append failed (its consumer then retries its messages alone);
messages of one caller stay in its order. What it is not for: deciding what an entry is
(``ledger.writer``) or the order of indexes (the store, under its advisory lock).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

__all__ = ["AppendBatcher"]

T = TypeVar("T")


class AppendBatcher(Generic[T]):
    """``append`` takes the messages of every batch handed in meanwhile, in arrival order (at
    most ``max_messages`` of them, but never fewer than one caller's batch)."""

    def __init__(
        self,
        append: Callable[[list[T]], Awaitable[object]],
        *,
        max_messages: int = 2048,
        linger: float = 0.0,
        linger_below: int = 64,
    ) -> None:
        """``linger``: when fewer than ``linger_below`` messages wait, wait this long for more
        first (at a few alerts a second an alert and its receipts arrive tens of ms apart, and
        one append for them costs a third of three)."""
        self._append = append
        self._max = max_messages
        self._linger = linger
        self._linger_below = linger_below
        self._waiting: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._lock = asyncio.Lock()
        self.appends = 0
        self.messages = 0

    async def submit(self, messages: Sequence[T]) -> None:
        """Return once ``messages`` are committed; raise what their append raised."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((messages, future))
        # asyncio.Lock is FIFO: whoever holds it appends what is waiting; a submitter whose
        # messages went in an earlier append finds its future done and only reads the outcome.
        async with self._lock:
            while not future.done():
                await self._run(future)
        await future

    async def _run(self, own: asyncio.Future[None]) -> None:
        if self._linger > 0 and sum(len(m) for m, _ in self._waiting) < self._linger_below:
            try:
                await asyncio.sleep(self._linger)
            except asyncio.CancelledError:
                self._waiting = [(m, f) for m, f in self._waiting if f is not own]
                raise
        taken: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        count = 0
        while self._waiting and (not taken or count + len(self._waiting[0][0]) <= self._max):
            messages, future = self._waiting.pop(0)
            taken.append((messages, future))
            count += len(messages)
        try:
            await self._append([m for messages, _ in taken for m in messages])
        except Exception as exc:
            for _, future in taken:
                future.set_exception(exc)
            return
        except BaseException:
            # Cancelled (a stop that ran out of time): the others' messages are not known to be
            # committed; they fail, and their consumers hand them back.
            for _, future in taken:
                if future is not own:
                    future.set_exception(RuntimeError("the append was cut off"))
            raise
        self.appends += 1
        self.messages += count
        for _, future in taken:
            future.set_result(None)
