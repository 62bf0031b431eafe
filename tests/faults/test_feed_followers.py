"""A live follower never falls behind silently: the receiving node dies with fetched, unacked
alerts, which come back only after JetStream's ack wait, once later alerts were stored.

The TJ node's inserts are held on its feed head row (a transaction of the test's own holds the row
lock), so its consumer has a batch fetched and not acked, its insert waiting on that lock; TJ is
then killed with SIGKILL and restarted while the KG terminal keeps posting. An SSE follower
(resuming with Last-Event-ID) and a poller paging by ``next_cursor`` must each get every
acknowledged alert exactly once, the late ones included, and some alerts must really have been
stored out of stream order.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter

import httpx
import nats
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from blo_exchange.bus.streams import ALERTS_STREAM
from blo_exchange.db.engine import create_engine
from tests.faults.checker import check
from tests.faults.conftest import LONG
from tests.faults.harness import KG, MARK, TJ, FaultSystem, Terminal, run_load

DURATION = 30.0 if LONG else 12.0
SETTLE = 60.0


class Follower:
    """Collects (feed position, stream sequence, key) of this run's alerts, as a client would."""

    def __init__(self, url: str, token: str, prefix: str, start: int) -> None:
        self.url, self.prefix, self.cursor = url, prefix, start
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seen: list[tuple[int, int, str]] = []
        self.reconnects = 0

    def take(self, item: dict[str, object]) -> None:
        case = item["case"]
        assert isinstance(case, dict)
        narrative = str(case.get("narrative", {}).get("text", ""))
        if narrative.startswith(MARK + self.prefix):
            key = narrative.removeprefix(MARK)
            self.seen.append((int(str(item["feed_seq"])), int(str(item["stream_seq"])), key))

    async def poll(self) -> None:
        async with httpx.AsyncClient(timeout=5.0) as client:
            while True:
                try:
                    response = await client.get(
                        self.url + "/v1/feed",
                        params={"cursor": self.cursor, "limit": 50},
                        headers=self.headers,
                    )
                except httpx.TransportError:
                    self.reconnects += 1
                    await asyncio.sleep(0.2)
                    continue
                if response.status_code != 200:
                    await asyncio.sleep(0.2)
                    continue
                page = response.json()
                for item in page["items"]:
                    self.take(item)
                self.cursor = page["next_cursor"]
                if not page["items"]:
                    await asyncio.sleep(0.1)

    async def follow(self) -> None:
        async with httpx.AsyncClient(timeout=httpx.Timeout(5.0, read=30.0)) as client:
            while True:
                headers = self.headers | {"Last-Event-ID": str(self.cursor)}
                try:
                    async with client.stream(
                        "GET", self.url + "/v1/feed/stream", headers=headers
                    ) as response:
                        if response.status_code != 200:
                            await asyncio.sleep(0.2)
                            continue
                        event: dict[str, str] = {}
                        async for line in response.aiter_lines():
                            if line.startswith(("id:", "data:")):
                                name, _, value = line.partition(":")
                                event[name] = value.strip()
                            elif line == "" and "data" in event:
                                self.take(json.loads(event["data"]))
                                self.cursor = int(event["id"])
                                event = {}
                except httpx.TransportError:
                    pass
                self.reconnects += 1
                await asyncio.sleep(0.2)


async def last_position(system: FaultSystem) -> int:
    rows = await system.sql(
        "SELECT last_seq FROM node_feed_heads WHERE node_id = :n",
        database=system.node(TJ)["agency"],
        n=TJ,
    )
    return int(rows[0][0]) if rows else 0


async def blocked_by(conn: AsyncConnection) -> int:
    """How many other sessions wait on a lock that ``conn``'s transaction holds."""
    blocked = await conn.scalar(
        text(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE pg_backend_pid() = ANY(pg_blocking_pids(pid))"
        )
    )
    return int(blocked or 0)


async def ack_pending(system: FaultSystem) -> int:
    client = await nats.connect(system.credentials["nats_url"])
    try:
        info = await client.jetstream().consumer_info(ALERTS_STREAM.name, f"node-{TJ}")
        return int(info.num_ack_pending or 0)
    finally:
        await client.close()


async def test_followers_get_every_alert_once_after_the_receiver_crashed(
    fault_system: FaultSystem,
) -> None:
    await fault_system.heal()
    kg, tj = fault_system.node(KG), fault_system.node(TJ)
    prefix = f"followers-{int(time.time())}"
    terminal = Terminal(kg["url"], kg["terminal_token"], settle=SETTLE)
    # One alert first, so TJ's feed head row exists for the test to hold.
    warm = await run_load(terminal, prefix + "-warm", duration=0.1, workers=1)
    assert warm.acknowledged
    deadline = time.monotonic() + 30
    while not await last_position(fault_system):
        assert time.monotonic() < deadline, "the warm-up alert never reached TJ"
        await asyncio.sleep(0.2)

    start = await last_position(fault_system)
    poller = Follower(tj["url"], tj["analyst_token"], prefix + "-", start)
    streamer = Follower(tj["url"], tj["analyst_token"], prefix + "-", start)
    following = [asyncio.create_task(poller.poll()), asyncio.create_task(streamer.follow())]
    seen: dict[str, object] = {}

    async def crash_with_unacked() -> None:
        credentials = fault_system.credentials
        tj_database = credentials["databases"][credentials["nodes"][TJ]["agency"]]
        engine = create_engine(tj_database, pool_size=1)
        try:
            async with engine.connect() as conn:
                held = await conn.begin()
                await conn.execute(
                    text("SELECT 1 FROM node_feed_heads WHERE node_id = :n FOR UPDATE"), {"n": TJ}
                )
                # Unacked is not enough: a batch committed just before our lock may still be
                # waiting for its acks, and would then be stored in order. Kill only once TJ's
                # insert waits on our lock, so what it fetched is surely uncommitted.
                deadline = time.monotonic() + 10
                pending = 0
                while not pending:
                    assert time.monotonic() < deadline, "TJ never waited on the held feed head"
                    await asyncio.sleep(0.1)
                    if await blocked_by(conn):
                        pending = await ack_pending(fault_system)
                seen["unacked_at_kill"] = pending
                fault_system.processes.kill(TJ)
                await held.rollback()
        finally:
            await engine.dispose()
        restarted = time.monotonic()
        await fault_system.restart(TJ)
        seen["restart_seconds"] = round(time.monotonic() - restarted, 1)

    load = await run_load(
        terminal, prefix, duration=DURATION, workers=3, fault=crash_with_unacked, fault_after=1.5
    )
    settled = time.monotonic()
    while True:
        verdict = check(load.acknowledged, await fault_system.feed(prefix), [])
        if not verdict.lost or time.monotonic() - settled > SETTLE:
            break
        await asyncio.sleep(0.5)
    expected = set(load.acknowledged)
    for _ in range(50):  # the followers' last poll or event, at most 10 s more
        if all(expected <= {key for _, _, key in f.seen} for f in (poller, streamer)):
            break
        await asyncio.sleep(0.2)
    for task in following:
        task.cancel()
    for task in following:
        with contextlib.suppress(asyncio.CancelledError):
            await task

    def late(follower: Follower) -> int:
        """Alerts stored after one with a higher stream sequence: behind a stream cursor."""
        ordered = sorted(follower.seen)
        highest, count = 0, 0
        for _, stream_seq, _ in ordered:
            if stream_seq < highest:
                count += 1
            highest = max(highest, stream_seq)
        return count

    report = {
        "scenario": "feed-followers",
        "acknowledged": len(expected),
        "poller": len(poller.seen),
        "sse": len(streamer.seen),
        "late": late(poller),
        "sse_reconnects": streamer.reconnects,
        **seen,
    }
    print("\nFAULTS " + json.dumps(report), flush=True)
    assert not verdict.lost, sorted(verdict.lost)
    for follower in (poller, streamer):
        keys = Counter(key for _, _, key in follower.seen)
        assert expected <= set(keys), sorted(expected - set(keys))
        assert [k for k, n in keys.items() if n > 1] == []
        positions = [p for p, _, _ in follower.seen]
        assert positions == sorted(positions)
    assert late(poller) > 0, "no alert was stored late: the crash did not test what it should"
