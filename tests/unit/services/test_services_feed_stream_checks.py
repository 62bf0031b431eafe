"""A live stream's checks while its events flow (issue 14): the credential is asked again before
a batch once ``ADMITTED_EVERY`` has passed, not before every batch, and whether the client left
at most every ``recheck`` seconds; a revoked credential still ends the stream at the next batch
after that interval."""

from __future__ import annotations

import itertools
from typing import Any, cast

import pytest

from blo_exchange.domain.directory import Principal, Role
from blo_exchange.domain.ids import utc_now
from blo_exchange.services import feed_events
from blo_exchange.services.feed import LivePage
from blo_exchange.services.feed_events import FeedStreams
from blo_exchange.services.outages import Outages

ANALYST = Principal(
    id="analyst-tj",
    role=Role.ANALYST,
    agency_id="tj-drug-control-agency",
    label="a",
    created_at=utc_now(),
)


class BusyFeed:
    """Every read gives one new event at once: a stream that never waits."""

    def __init__(self) -> None:
        self.positions = itertools.count(1)

    def require_analyst(self, principal: Principal) -> None:
        pass

    async def live(self, principal: Principal, *, cursor: int) -> LivePage:
        seq = next(self.positions)
        return LivePage(items=[(seq, "{}")], next_cursor=seq)

    async def wait(self, timeout: float) -> bool:
        return True


async def test_a_flowing_stream_asks_again_by_time_not_by_batch(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(feed_events.time, "monotonic", lambda: clock[0])
    asked = {"admitted": 0, "left": 0}
    allowed = [True]

    async def admitted() -> bool:
        asked["admitted"] += 1
        return allowed[0]

    async def disconnected() -> bool:
        asked["left"] += 1
        return False

    streams = FeedStreams(cast(Any, BusyFeed()), Outages(), recheck=2.0)
    stream = streams.open(ANALYST, start=0, disconnected=disconnected, admitted=admitted)
    frames = stream.frames
    assert await anext(frames) == b"retry: 2000\n\n"
    for _ in range(50):  # fifty batches within one instant: each check once
        assert b"event: alert" in await anext(frames)
    assert asked == {"admitted": 1, "left": 1}

    clock[0] += feed_events.ADMITTED_EVERY  # the credential is due again, the client not yet
    await anext(frames)
    assert asked == {"admitted": 2, "left": 1}
    clock[0] += 2.0
    await anext(frames)
    assert asked == {"admitted": 3, "left": 2}

    allowed[0] = False  # revoked: the next batch once the interval passed is not sent
    await anext(frames)  # within the interval: still the old answer
    clock[0] += feed_events.ADMITTED_EVERY
    with pytest.raises(StopAsyncIteration):
        await anext(frames)
    assert streams.slots.open(ANALYST.id) == 0  # its slot given back
