"""FeedService.open_item: the TAXII server's way in, with the same reader checks as ``get``."""

from __future__ import annotations

import dataclasses

import pytest

from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import NotFound
from tests.unit.services.fakes import FakeInbox
from tests.unit.services.test_services_feed import TJ, analyst, deliver, feed_for
from tests.unit.services.world import NOW, World


async def test_an_analyst_of_the_agency_gets_what_get_gives() -> None:
    world = World.demo()
    inbox = FakeInbox()
    await deliver(world, inbox, 1, start=1)
    feed, _ = feed_for(world, inbox)
    (row,) = inbox.items.values()
    reader = analyst(world)
    assert await feed.open_item(reader, row) == await feed.get(reader, row.alert_id)


@pytest.mark.parametrize(
    "who",
    [
        Principal(id="kg", role=Role.ANALYST, agency_id="kg-border-service", created_at=NOW),
        Principal(id="aud", role=Role.AUDITOR, created_at=NOW),
    ],
)
async def test_anyone_else_gets_not_found(who: Principal) -> None:
    world = World.demo()
    inbox = FakeInbox()
    await deliver(world, inbox, 1, start=1)
    feed, _ = feed_for(world, inbox)
    (row,) = inbox.items.values()
    with pytest.raises(NotFound):
        await feed.open_item(who, row)


async def test_an_altered_row_does_not_open() -> None:
    world = World.demo()
    inbox = FakeInbox()
    await deliver(world, inbox, 1, start=1)
    feed, _ = feed_for(world, inbox)
    (row,) = inbox.items.values()
    altered = dataclasses.replace(row, border_pair="TJ-UZ")  # the subject no longer matches
    with pytest.raises(NotFound):
        await feed.open_item(analyst(world), altered)
    assert world.node(TJ).agency_id == row.agency_id
