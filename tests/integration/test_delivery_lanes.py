"""Delivery on real servers (NATS, Postgres, four demo nodes): a ``:batch`` travels on the bulk
lane, which a live alert never queues behind; and a node's readers share one open per alert."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blo_exchange.bootstrap.delivery_lanes import delivery_consumers
from blo_exchange.bootstrap.outages import ADAPTER_OUTAGES
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.services.feed import FeedService
from blo_exchange.services.feed_events import FeedStreams
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has, ledger_has

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def post_live(deploy: Deployment) -> str:
    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    return str(response.json()["alert_id"])


async def post_batch(deploy: Deployment, count: int) -> list[str]:
    items = [{"idempotency_key": str(uuid.uuid4()), "alert": EXAMPLE_SEIZURE} for _ in range(count)]
    response = await deploy.client(KG).post(
        "/v1/alerts:batch", json={"alerts": items}, headers=deploy.terminal(KG)
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202] * count
    return [str(r["alert_id"]) for r in results]


async def test_a_live_alert_never_queues_behind_the_bulk_lane(deploy: Deployment) -> None:
    tj = deploy.runtimes[TJ]
    assert tj.bulk_consumer is not None
    tj.bulk_consumer.stop()  # TJ's bulk lane stalls, as under a flood it cannot keep up with
    await asyncio.sleep(1.5)  # its fetch in hand runs out

    batch = await post_batch(deploy, 3)
    live = await post_live(deploy)
    await eventually(feed_has(deploy, TJ, live), what="the live alert in the TJ feed")
    for alert_id in batch:
        assert not await feed_has(deploy, TJ, alert_id)()
    js = tj.bus.js
    info = await js.consumer_info("BLO_ALERTS", f"node-{TJ}-bulk")
    assert info.num_pending + info.num_ack_pending == 3  # waiting on their own lane
    last = await js.get_last_msg("BLO_ALERTS", "blo.v1.alerts.KG-TJ.seizure.bulk")
    assert last.seq is not None
    # The ledger writer reads both lanes.
    await eventually(ledger_has(deploy, TJ, alert_id=batch[0]), what="a batch item ledgered")

    _, bulk = delivery_consumers(tj.bus, tj.settings, tj.node, tj.delivery)
    tj.bulk_consumer = bulk
    tj.tasks.append(asyncio.create_task(bulk.run()))
    for alert_id in batch:
        await eventually(feed_has(deploy, TJ, alert_id), what="the batch in the TJ feed")


async def test_twenty_readers_share_one_open_per_alert(deploy: Deployment) -> None:
    tj = deploy.runtimes[TJ]
    principal = await tj.auth.authenticate(deploy.seed.analyst_tokens[TJ], certificate=None)
    streams = FeedStreams(tj.feed, ADAPTER_OUTAGES, per_principal=20)  # as the SSE routes
    start = await tj.inbox.last_position(tj.node.id, tj.node.agency_id)
    posted: list[str] = []
    got: list[list[str]] = [[] for _ in range(20)]

    async def no() -> bool:
        return False

    async def yes() -> bool:
        return True

    async def read(seen: list[str]) -> None:
        stream = streams.open(principal, start=start, disconnected=no, admitted=yes)
        async for chunk in stream.frames:
            for event in chunk.split(b"\n\n"):
                if event.startswith(b"id: "):
                    seen.append(event.split(b'"alert_id":"')[1].split(b'"')[0].decode())
            if len(seen) >= 5:
                return

    readers = [asyncio.create_task(read(seen)) for seen in got]
    await asyncio.sleep(0.5)
    for _ in range(5):
        posted.append(await post_live(deploy))
    await asyncio.wait_for(asyncio.gather(*readers), 30.0)

    assert got == [posted] * 20

    # One open per alert, by delivery (counted once its receipts are out: readers may be first).
    async def delivered() -> bool:
        return tj.delivery.counts["delivered"] == 5

    await eventually(delivered, what="delivery to count the five")
    assert tj.feed.opens == 0  # and none by the feed for its 20 readers
    # A catch-up from the start: the same frames.
    pages = await asyncio.gather(
        *(tj.feed.page(principal, cursor=start, limit=10) for _ in range(20))
    )
    assert all([i["alert_id"] for i in p.items] == posted for p in pages)
    assert tj.feed.opens == 0

    # A feed without those frames (another process on the same database): one open per alert
    # for the 20 readers together.
    cold = FeedService(node=tj.node, kem_keys=tj.keys.kem, directory=tj.directory, inbox=tj.inbox)
    pages = await asyncio.gather(*(cold.page(principal, cursor=start, limit=10) for _ in range(20)))
    assert all([i["alert_id"] for i in p.items] == posted for p in pages)
    assert cold.opens == 5
