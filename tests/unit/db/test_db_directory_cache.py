"""SqlDirectory's cache: one load per key in flight, refresh ahead, invalidation wins."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from blo_exchange.db.directory import REFRESHING_AT_ONCE, SqlDirectory


def directory(cache_seconds: float) -> SqlDirectory:
    return SqlDirectory(cast(Any, None), cache_seconds=cache_seconds)


async def test_concurrent_misses_share_one_load() -> None:
    cache = directory(60.0)
    loads = 0
    gate = asyncio.Event()

    async def load() -> int:
        nonlocal loads
        loads += 1
        await gate.wait()
        return loads

    waiting = [asyncio.create_task(cache._cached(("k",), load)) for _ in range(50)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [1] * 50
    assert loads == 1
    assert await cache._cached(("k",), load) == 1  # a hit


async def test_an_entry_past_half_its_life_is_served_and_reloaded_behind() -> None:
    cache = directory(0.2)
    values = iter(range(10))

    async def load() -> int:
        return next(values)

    assert await cache._cached(("k",), load) == 0
    await asyncio.sleep(0.12)
    assert await cache._cached(("k",), load) == 0  # still fresh enough: served, reload started
    await asyncio.sleep(0.01)
    assert await cache._cached(("k",), load) == 1


async def test_a_failed_load_is_not_cached_and_invalidate_drops_loads_in_flight() -> None:
    cache = directory(60.0)

    async def fail() -> int:
        raise LookupError("down")

    for _ in range(2):
        with pytest.raises(LookupError):
            await cache._cached(("k",), fail)
    gate = asyncio.Event()

    async def slow() -> int:
        await gate.wait()
        return 1

    async def fresh() -> int:
        return 2

    stale = asyncio.create_task(cache._cached(("k",), slow))
    await asyncio.sleep(0)
    cache.invalidate()  # a CLI write: the load in flight may have read the old rows
    gate.set()
    assert await stale == 1
    assert await cache._cached(("k",), fresh) == 2


async def test_reloads_behind_served_entries_run_a_few_at_a_time() -> None:
    """A hundred live streams re-check their principals at about the same moment: their reloads
    behind the served entries must not take a pool connection each at once (issue 14)."""
    cache = directory(0.2)
    running = peak = 0
    reloaded: list[str] = []

    def load_of(key: str, value: int) -> Any:
        async def load() -> int:
            nonlocal running, peak
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.005)
            running -= 1
            if value:
                reloaded.append(key)
            return value

        return load

    keys = [f"principal-{n}" for n in range(12)]
    for key in keys:
        assert await cache._cached((key,), load_of(key, 0)) == 0
    await asyncio.sleep(0.12)  # past half their life: served, and reloaded behind
    assert [await cache._cached((key,), load_of(key, 1)) for key in keys] == [0] * 12
    await asyncio.sleep(0.1)  # 12 reloads of 5 ms, two at a time
    assert sorted(reloaded) == sorted(keys)
    assert peak == REFRESHING_AT_ONCE
    assert [await cache._cached((key,), load_of(key, 2)) for key in keys] == [1] * 12
