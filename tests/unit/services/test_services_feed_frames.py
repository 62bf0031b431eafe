"""Opened frames shared by every reader: one open per alert per node, bounded, and never served
to the wrong reader, for altered bytes, or once the signing key is no longer believed."""

from __future__ import annotations

import asyncio
import dataclasses

import pytest

from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import Forbidden, NotFound
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feed_frames import OpenedFrames
from blo_exchange.services.ports import InboxItem
from tests.unit.services.fakes import FakeInbox, FakePublisher
from tests.unit.services.test_services_delivery_batch import alerts, flipped
from tests.unit.services.test_services_feed import TJ, analyst
from tests.unit.services.world import NOW, World

SUBJECT = "blo.v1.alerts.KG-TJ.seizure"


def feed_of(world: World, inbox: FakeInbox) -> FeedService:
    node = world.node(TJ)
    key = world.agency_keys[node.agency_id]
    return FeedService(
        node=node, kem_keys={key.key_id: key}, directory=world.directory, inbox=inbox
    )


async def delivered(world: World, inbox: FakeInbox, feed: FeedService | None, count: int) -> None:
    delivery = world.delivery(TJ, inbox, FakePublisher())
    if feed is not None:
        delivery.on_stored.append(feed.stored)
    raws = await alerts(world, count)
    for n, raw in enumerate(raws):
        assert (await delivery.handle(SUBJECT, raw, n + 1)).status == "delivered"


async def fed(world: World, count: int) -> tuple[FakeInbox, FeedService, str]:
    """``count`` alerts delivered with the feed's hook; the first one's id."""
    inbox = FakeInbox()
    feed = feed_of(world, inbox)
    await delivered(world, inbox, feed, count)
    return inbox, feed, next(iter(inbox.items.values())).alert_id


async def test_twenty_readers_take_the_frames_delivery_opened() -> None:
    world = World.demo()
    inbox = FakeInbox()
    feed = feed_of(world, inbox)
    reader = analyst(world)
    assert (await feed.live(reader, cursor=0)).items == []  # a live reader waits from here
    await delivered(world, inbox, feed, 6)

    async def read_all() -> list[int]:
        live = await feed.live(reader, cursor=0)
        page = await feed.page(reader, cursor=0, limit=10)  # a catch-up from the start
        assert [seq for seq, _ in live.items] == [i["feed_seq"] for i in page.items]
        return [seq for seq, _ in live.items]

    seen = await asyncio.gather(*(read_all() for _ in range(20)))
    assert seen == [[1, 2, 3, 4, 5, 6]] * 20
    assert feed.opens == 0  # the delivery's one open per alert was the only one


async def test_a_cold_catch_up_opens_each_alert_once_for_all_readers() -> None:
    world = World.demo()
    inbox = FakeInbox()
    await delivered(world, inbox, None, 5)  # stored by another process: no frames here
    feed = feed_of(world, inbox)
    reader = analyst(world)
    pages = await asyncio.gather(*(feed.page(reader, cursor=0, limit=10) for _ in range(20)))
    assert all([i["feed_seq"] for i in p.items] == [1, 2, 3, 4, 5] for p in pages)
    assert feed.opens == 5


async def test_a_row_altered_in_the_database_is_not_served_from_its_frame() -> None:
    world = World.demo()
    inbox, feed, _ = await fed(world, 1)
    (key, row), *_ = inbox.items.items()
    altered = flipped(row.envelope, b'"ciphertext":"')
    inbox.items[key] = dataclasses.replace(row, envelope=altered)
    with pytest.raises(NotFound):
        await feed.get(analyst(world), row.alert_id)
    assert feed.opens == 1  # verified again, and refused


async def test_a_frame_is_not_served_once_its_signing_key_is_revoked() -> None:
    world = World.demo()
    _, feed, alert_id = await fed(world, 1)
    assert (await feed.get(analyst(world), alert_id))["alert_id"] == alert_id
    world.directory.signing_keys["blo-karamyk-kg"] = {}  # revoked, back to before the alert
    with pytest.raises(NotFound):
        await feed.get(analyst(world), alert_id)


async def test_frames_are_never_served_to_another_agency_or_role() -> None:
    world = World.demo()
    _, feed, alert_id = await fed(world, 2)
    uz = Principal(
        id="analyst-uz",
        role=Role.ANALYST,
        node_id=None,
        agency_id=world.node("blo-oybek-uz").agency_id,
        label="u",
        created_at=NOW,
    )
    with pytest.raises(Forbidden):
        await feed.live(uz, cursor=0)
    with pytest.raises(Forbidden):
        await feed.page(uz, cursor=0, limit=10)
    with pytest.raises(NotFound):
        await feed.get(uz, alert_id)
    terminal = world.terminal(TJ)  # the receiving node's own terminal: not the origin agency
    with pytest.raises(NotFound):
        await feed.get(terminal, alert_id)
    assert feed.opens == 0


def test_the_frames_stay_within_their_bounds() -> None:
    now = [0.0]
    frames = OpenedFrames(max_items=3, max_bytes=25, max_age=10.0, clock=lambda: now[0])
    for n in range(5):
        frames.put(("a", n), text="x" * 5, envelope_sha256=f"d{n}", signature_key_id="k")
    assert len(frames) == 3
    assert frames.get(("a", 0), "d0") is None  # the oldest went first
    assert frames.get(("a", 4), "d4") is not None
    assert frames.get(("a", 4), "other bytes") is None
    frames.put(("a", 9), text="y" * 20, envelope_sha256="d9", signature_key_id="k")
    assert frames.size_bytes <= 25
    now[0] = 11.0
    assert frames.get(("a", 9), "d9") is None  # too old: opened again


async def test_frames_in_step_with_the_window_join_it_without_a_page_read() -> None:
    world = World.demo()
    pages: list[int] = []

    @dataclasses.dataclass
    class CountingInbox(FakeInbox):
        async def page(
            self, node_id: str, agency_id: str, *, after: int, limit: int
        ) -> list[InboxItem]:
            pages.append(after)
            return await super().page(node_id, agency_id, after=after, limit=limit)

    inbox = CountingInbox()
    feed = feed_of(world, inbox)
    reader = analyst(world)
    assert (await feed.live(reader, cursor=0)).items == []
    pages.clear()  # the window's first load
    await delivered(world, inbox, feed, 3)
    assert [seq for seq, _ in (await feed.live(reader, cursor=0)).items] == [1, 2, 3]
    assert pages == []  # straight from the hook

    # An alert stored meanwhile without the hook (the node's own, by ingest): a gap, so the
    # next batch is read from the database, the gap included.
    other = dataclasses.replace(next(iter(inbox.items.values())), alert_id="own-copy")
    await inbox.add(other)
    await delivered(world, inbox, feed, 1)
    assert [seq for seq, _ in (await feed.live(reader, cursor=3)).items] == [4, 5]
    assert pages == [3]
