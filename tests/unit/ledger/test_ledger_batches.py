"""The writer's append batcher: batches handed in during an append go into the next one."""

from __future__ import annotations

import asyncio

import pytest

from blo_exchange.ledger.batches import AppendBatcher


class Store:
    """Appends block on ``gate`` (when set), so a test can hand in batches meanwhile."""

    def __init__(self) -> None:
        self.appends: list[list[str]] = []
        self.gate: asyncio.Event | None = None
        self.started = asyncio.Event()
        self.fail: Exception | None = None

    async def append(self, messages: list[str]) -> None:
        self.started.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        self.appends.append(messages)


async def test_batches_handed_in_during_an_append_go_into_one_append_in_order() -> None:
    store = Store()
    store.gate = asyncio.Event()
    batcher = AppendBatcher(store.append)
    first = asyncio.create_task(batcher.submit(["a1", "a2"]))
    await store.started.wait()
    others = [asyncio.create_task(batcher.submit(m)) for m in (["r1"], ["q1", "q2"], ["a3"])]
    await asyncio.sleep(0)
    # Nobody returns before the append holding its messages committed.
    assert not any(t.done() for t in [first, *others])
    store.gate.set()
    await asyncio.gather(first, *others)
    assert store.appends == [["a1", "a2"], ["r1", "q1", "q2", "a3"]]
    assert (batcher.appends, batcher.messages) == (2, 6)


async def test_a_failed_append_fails_every_batch_in_it_and_the_next_one_goes_through() -> None:
    store = Store()
    store.gate = asyncio.Event()
    batcher = AppendBatcher(store.append)
    first = asyncio.create_task(batcher.submit(["a1"]))
    await store.started.wait()
    store.fail = ConnectionError("database down")
    second = asyncio.create_task(batcher.submit(["r1"]))
    third = asyncio.create_task(batcher.submit(["r2"]))
    await asyncio.sleep(0)
    store.gate.set()
    outcomes = await asyncio.gather(first, second, third, return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    assert store.appends == []
    store.fail = None
    await batcher.submit(["r1"])
    assert store.appends == [["r1"]]


async def test_an_append_takes_at_most_max_messages_but_always_a_whole_batch() -> None:
    store = Store()
    store.gate = asyncio.Event()
    batcher = AppendBatcher(store.append, max_messages=3)
    first = asyncio.create_task(batcher.submit(["a", "b", "c", "d"]))  # larger than the max
    await store.started.wait()
    rest = [asyncio.create_task(batcher.submit(m)) for m in (["e", "f"], ["g"], ["h"])]
    await asyncio.sleep(0)
    store.gate.set()
    await asyncio.gather(first, *rest)
    assert store.appends == [["a", "b", "c", "d"], ["e", "f", "g"], ["h"]]


async def test_a_cancelled_append_fails_the_other_batches_in_it() -> None:
    store = Store()
    store.gate = asyncio.Event()
    batcher = AppendBatcher(store.append)
    first = asyncio.create_task(batcher.submit(["a1"]))
    await store.started.wait()
    second = asyncio.create_task(batcher.submit(["r1"]))
    third = asyncio.create_task(batcher.submit(["r2"]))
    await asyncio.sleep(0)
    # The first append commits; the second submitter appends r1 and r2 together, and is
    # cancelled (a stop that ran out of time) while that append is in hand.
    store.started.clear()
    gate, store.gate = store.gate, asyncio.Event()
    gate.set()
    await first
    await store.started.wait()
    second.cancel()
    with pytest.raises(asyncio.CancelledError):
        await second
    with pytest.raises(RuntimeError, match="cut off"):
        await third  # not known to be committed: its consumer hands it back
    assert store.appends == [["a1"]]


async def test_a_small_batch_lingers_for_the_next_and_enough_messages_append_alone() -> None:
    store = Store()
    batcher = AppendBatcher(store.append, linger=0.05, linger_below=3)
    first = asyncio.create_task(batcher.submit(["alert"]))
    await asyncio.sleep(0.01)
    second = asyncio.create_task(batcher.submit(["receipt"]))  # arrives 10 ms later
    await asyncio.gather(first, second)
    assert store.appends == [["alert", "receipt"]]
    await batcher.submit(["a", "b", "c"])  # enough already: appended at once, alone
    assert store.appends[-1] == ["a", "b", "c"]
