"""Group commit for a statement many requests run at once (issue 14, stop 30).

Every accept stores its own copy and its answer at the node's next feed position. Those stores
take the feed head's lock in turn (migration ``0012``: positions become visible in the order
they are taken), each holding it until its commit is on disk; so they went one after another at
the disk's pace, and when the disk slowed (NATS, the ledger writer and Postgres all flushing at
once) the accepts queued behind them: in the e2e bench at 124 alerts/s, stores waited up to
0.8 s in a step's first second. :class:`GroupedCalls` runs one statement at a time for all the
calls made while the one before it ran: one lock, one commit, one flush for the group.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar, cast

__all__ = ["GroupedCalls", "retrieve_outcome"]

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


class GroupedCalls(Generic[T, R]):
    """A call's value goes in the next group: while ``in_flight`` groups' statements run, the
    values of the calls made meanwhile wait, and go together (at most ``most``, in the order
    they came) in the next. A group of one runs ``one``; larger ones ``many``, which gives one
    result per value, in order. A group that fails runs again a value at a time, so a value's
    error is its own caller's only.

    The statements run in a task of their own: a caller that gives up (a client gone) does not
    cut off the others' statement, and its own value is stored all the same (as a caller that
    gave up just after the statement began always found it stored).
    """

    def __init__(
        self,
        one: Callable[[T], Awaitable[R]],
        many: Callable[[list[T]], Awaitable[list[R]]],
        *,
        most: int,
        in_flight: int = 1,
    ) -> None:
        self._one = one
        self._many = many
        self._most = most
        self._in_flight = in_flight
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._runners: set[asyncio.Task[None]] = set()
        self.groups = 0
        self.values = 0

    async def __call__(self, value: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        future.add_done_callback(retrieve_outcome)  # a caller that gave up reads no error
        self._waiting.append((value, future))
        if len(self._runners) < self._in_flight:
            runner = asyncio.create_task(self._run(), name="grouped-calls")
            self._runners.add(runner)
            runner.add_done_callback(self._runners.discard)  # one cancelled before it ran
        return await asyncio.shield(future)

    async def _run(self) -> None:
        try:
            while self._waiting:
                group = self._waiting[: self._most]
                del self._waiting[: self._most]
                try:
                    await self._settle(group)
                except BaseException:
                    _fail(group, RuntimeError("the statement was cut off"))
                    raise
        except BaseException:
            _fail(self._waiting, RuntimeError("the statement was cut off"))
            self._waiting = []
            raise
        finally:
            # Not running from this moment: a call made before the loop's next turn (when the
            # done callback would say so) must start a runner, or it waits with none to run it.
            self._runners.discard(cast("asyncio.Task[None]", asyncio.current_task()))

    async def _settle(self, group: list[tuple[T, asyncio.Future[R]]]) -> None:
        values = [value for value, _ in group]
        try:
            results = [await self._one(values[0])] if len(values) == 1 else await self._many(values)
        except Exception as exc:
            if len(group) == 1:
                _set(group[0][1], error=exc)
                return
            log.warning("a grouped statement failed (%s); each value alone", type(exc).__name__)
            for value, future in group:
                try:
                    result = await self._one(value)
                except Exception as alone:
                    _set(future, error=alone)
                else:
                    _set(future, result)
            return
        self.groups += 1
        self.values += len(values)
        for (_, future), result in zip(group, results, strict=True):
            _set(future, result)


def _set(
    future: asyncio.Future[Any], result: Any = None, *, error: BaseException | None = None
) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


def _fail(group: list[tuple[Any, asyncio.Future[Any]]], error: BaseException) -> None:
    for _, future in group:
        _set(future, error=error)


def retrieve_outcome(future: asyncio.Future[Any]) -> None:
    """A done callback: the future's error counts as seen, for a future (or task) whose failure
    is handled elsewhere or by nobody (no "exception was never retrieved" in the log)."""
    if not future.cancelled():
        future.exception()
