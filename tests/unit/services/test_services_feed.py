"""FeedService's live window: each stored item opened once for every subscriber, in order."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest

import blo_exchange.services.feed as feed_module
from blo_exchange.crypto.keys import VerifyKey
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.services.feed import FeedService
from tests.unit.services.fakes import FakeInbox, FakePublisher
from tests.unit.services.world import NOW, World

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
SUBJECT = "blo.v1.alerts.KG-TJ."


def analyst(world: World) -> Principal:
    node = world.node(TJ)
    return Principal(
        id="analyst-tj",
        role=Role.ANALYST,
        node_id=None,
        agency_id=node.agency_id,
        label="a",
        created_at=NOW,
    )


async def deliver(world: World, inbox: FakeInbox, count: int, start: int) -> None:
    delivery = world.delivery(TJ, inbox, FakePublisher())
    for n in range(count):
        document = EXAMPLE_SEIZURE if n % 2 == 0 else EXAMPLE_RISK
        submission = ALERT_SUBMISSION_ADAPTER.validate_python(document)
        await world.ingest(KG).submit(world.terminal(KG), submission, f"key-{start + n:04d}")
        raw = world.publisher.published[-1][1]
        kind = "seizure" if n % 2 == 0 else "risk"
        outcome = await delivery.handle(SUBJECT + kind, raw, start + n)
        assert outcome.status == "delivered"


def feed_for(world: World, inbox: FakeInbox) -> tuple[FeedService, list[int]]:
    node = world.node(TJ)
    key = world.agency_keys[node.agency_id]
    verifications: list[int] = []
    keys_of = world.directory.verify_keys

    async def counting(owner_kind: str, owner_id: str, at: datetime) -> dict[str, VerifyKey]:
        verifications.append(1)
        return await keys_of(owner_kind, owner_id, at)

    world.directory.verify_keys = counting  # type: ignore[method-assign]
    feed = FeedService(
        node=node, kem_keys={key.key_id: key}, directory=world.directory, inbox=inbox
    )
    return feed, verifications


async def test_subscribers_share_one_open_per_item_and_see_every_item_in_order() -> None:
    world = World.demo()
    inbox = FakeInbox()
    await deliver(world, inbox, 3, start=1)  # before anyone listens: read from the database
    feed, verifications = feed_for(world, inbox)
    reader = analyst(world)

    async def subscriber(seen: list[int]) -> None:
        cursor = 0
        while len(seen) < 8:
            page = await feed.live(reader, cursor=cursor)
            for seq, data in page.items:
                assert json.loads(data)["feed_seq"] == seq
                seen.append(seq)
            cursor = page.next_cursor
            if not page.items:
                await feed.wait(1.0)

    seen: list[list[int]] = [[] for _ in range(20)]
    listening = [asyncio.create_task(subscriber(s)) for s in seen]
    for n in range(5):
        await asyncio.sleep(0.01)
        await deliver(world, inbox, 1, start=4 + n)
        await feed.notify()
    await asyncio.wait_for(asyncio.gather(*listening), 5.0)

    assert seen == [list(range(1, 9))] * 20
    # 3 old items paged by each of the 20 readers, who all started behind; then each of the 5 new
    # ones verified once by the delivery and once into the window, not once per reader.
    assert len(verifications) <= 3 * 20 + 5 + 5


async def test_a_cursor_before_the_window_pages_the_database() -> None:
    world = World.demo()
    inbox = FakeInbox()
    feed, _ = feed_for(world, inbox)
    reader = analyst(world)
    assert (await feed.live(reader, cursor=0)).items == []  # the window starts at 0
    await deliver(world, inbox, 2, start=1)
    await feed.notify()
    assert [seq for seq, _ in (await feed.live(reader, cursor=0)).items] == [1, 2]
    assert [seq for seq, _ in (await feed.live(reader, cursor=1)).items] == [2]
    assert not await feed.wait(0.01)  # nothing new: times out


async def test_a_reader_the_window_moved_past_pages_the_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(feed_module, "_WINDOW", 2)
    world = World.demo()
    inbox = FakeInbox()
    feed, _ = feed_for(world, inbox)
    reader = analyst(world)
    assert (await feed.live(reader, cursor=0)).items == []
    await deliver(world, inbox, 5, start=1)
    await feed.notify()
    page = await feed.live(reader, cursor=0)
    assert [seq for seq, _ in page.items] == [1, 2, 3, 4, 5]
    assert [seq for seq, _ in (await feed.live(reader, cursor=3)).items] == [4, 5]


async def test_an_alert_stored_late_is_after_every_cursor_already_given() -> None:
    # Stream sequences 10 and 11 are stored first; 5 (redelivered after a crash) comes last. A
    # follower at the position of 11 still gets 5: positions follow storing, not the stream.
    world = World.demo()
    inbox = FakeInbox()
    feed, _ = feed_for(world, inbox)
    reader = analyst(world)
    await deliver(world, inbox, 2, start=10)
    first = await feed.page(reader, cursor=0, limit=10)
    assert [item["stream_seq"] for item in first.items] == [10, 11]
    live = await feed.live(reader, cursor=first.next_cursor)
    assert live.items == []
    await deliver(world, inbox, 1, start=5)
    await feed.notify()
    later = await feed.page(reader, cursor=first.next_cursor, limit=10)
    assert [item["stream_seq"] for item in later.items] == [5]
    assert [
        json.loads(data)["stream_seq"]
        for _, data in (await feed.live(reader, cursor=live.next_cursor)).items
    ] == [5]
