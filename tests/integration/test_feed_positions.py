"""Feed positions on a real Postgres: concurrent inserts commit in any order, yet a reader that
pages on from the last position it saw never skips an item. And the retention vault's rows go
in with the alerts they belong to."""

from __future__ import annotations

import asyncio
import dataclasses
import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from blo_exchange.crypto.retention import SealedNominal
from blo_exchange.db.engine import create_engine, migrate, session_factory
from blo_exchange.db.held_connections import HeldConnections
from blo_exchange.db.node_store import SqlIdempotencyStore, SqlInbox
from blo_exchange.db.retention_store import SqlRetentionStore
from blo_exchange.errors import IdempotencyInProgress
from blo_exchange.services.ports import Completion, IdempotencyBegin, InboxItem
from blo_exchange.services.retention import RetainedNominal

NODE, AGENCY = "blo-test-tj", "tj-agency"


def item(n: int) -> InboxItem:
    return InboxItem(
        node_id=NODE,
        alert_id=f"alert-{n:05d}",
        agency_id=AGENCY,
        origin_agency="kg-agency",
        origin_node="blo-test-kg",
        border_pair="KG-TJ",
        kind="seizure",
        tlp="AMBER",
        created_at=datetime(2026, 12, 4, tzinfo=UTC),
        stream_seq=1000 - n,  # the stream's order is the reverse of storing: must not matter
        envelope=b"sealed",
        envelope_sha256=f"{n:064x}",
    )


@pytest.mark.parametrize("held_size", [0, 2], ids=["through-the-pool", "on-held-connections"])
async def test_a_pager_sees_every_concurrently_stored_item_once(
    database_url: str, held_size: int
) -> None:
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=12)
    held = HeldConnections(engine, size=held_size)
    inbox = SqlInbox(session_factory(engine), held=held)
    total, writers = 400, 12
    seen: list[str] = []
    done = asyncio.Event()

    async def writer(numbers: list[int]) -> None:
        for n in numbers:
            assert await inbox.add(item(n))
            assert not await inbox.add(item(n))  # again: no second position, no gap
            await asyncio.sleep(random.random() / 500)

    async def pager() -> None:
        cursor = 0
        while True:
            finished = done.is_set()
            rows = await inbox.page(NODE, AGENCY, after=cursor, limit=7)
            seen.extend(r.alert_id for r in rows)
            if rows:
                cursor = rows[-1].feed_seq
            elif finished:
                return

    reading = asyncio.create_task(pager())
    try:
        numbers = list(range(total))
        await asyncio.gather(*(writer(numbers[w::writers]) for w in range(writers)))
        done.set()
        await asyncio.wait_for(reading, 30.0)
        rows = await inbox.page(NODE, AGENCY, after=0, limit=total + 1)
        assert [r.feed_seq for r in rows] == list(range(1, total + 1))  # gapless
        assert sorted(seen) == sorted(item(n).alert_id for n in range(total))
        assert len(seen) == len(set(seen)) == total
        assert await inbox.last_position(NODE, AGENCY) == total
        assert held.fallbacks < 2 * total if held_size else held.fallbacks == 2 * total
    finally:
        reading.cancel()
        await held.close()
        await engine.dispose()


async def test_the_migration_numbers_stored_alerts_in_stream_order(database_url: str) -> None:
    from alembic import command
    from sqlalchemy import text

    from blo_exchange.db.engine import _alembic_config

    await asyncio.to_thread(command.upgrade, _alembic_config(database_url), "0003")
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            for node, seqs in (("node-a", [30, 10, 20]), ("node-b", [5])):
                for seq in seqs:
                    await conn.execute(
                        text(
                            "INSERT INTO node_inbox (node_id, alert_id, agency_id, origin_agency,"
                            " origin_node, border_pair, kind, tlp, created_at, stream_seq,"
                            " envelope, envelope_sha256) VALUES (:n, :a, 'ag', 'o', 'on',"
                            " 'KG-TJ', 'seizure', 'AMBER', now(), :s, 'x', 'h')"
                        ),
                        {"n": node, "a": f"alert-{seq}", "s": seq},
                    )
        await migrate(database_url)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text("SELECT node_id, stream_seq, feed_seq FROM node_inbox ORDER BY 1, 3")
                )
            ).all()
            heads = dict(
                (await conn.execute(text("SELECT node_id, last_seq FROM node_feed_heads"))).all()
            )
        assert [tuple(r) for r in rows] == [
            ("node-a", 10, 1),
            ("node-a", 20, 2),
            ("node-a", 30, 3),
            ("node-b", 5, 1),
        ]
        assert heads == {"node-a": 3, "node-b": 1}
        inbox = SqlInbox(session_factory(engine))
        assert await inbox.add(_for("node-a", item(1)))
        assert [r.feed_seq for r in await inbox.page("node-a", "ag", after=3, limit=5)] == [4]
    finally:
        await engine.dispose()


def _for(node: str, base: InboxItem) -> InboxItem:
    return dataclasses.replace(base, node_id=node, agency_id="ag")


@pytest.mark.parametrize("held_size", [0, 1], ids=["through-the-pool", "on-a-held-connection"])
async def test_an_accept_racing_its_own_consumer_takes_one_position_and_completes(
    database_url: str, held_size: int
) -> None:
    """The accept path stores and completes in one statement (issue 14); the node's own consumer
    storing the same alert at the same moment must leave neither a gap nor an open key."""
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=4)
    sessions = session_factory(engine)
    held = HeldConnections(engine, size=held_size)
    inbox, keys = SqlInbox(sessions, held=held), SqlIdempotencyStore(sessions, held=held)
    try:
        for n in range(40):
            key, stored = f"key-{n:05d}", item(n)
            claim = await keys.begin("terminal", key, "sha", stored.alert_id, stale_after=30)
            assert claim.state == "new"
            answer = {"alert_id": stored.alert_id}
            outcomes = await asyncio.gather(
                inbox.add(stored, completes=Completion("terminal", key, answer)),
                inbox.add(stored),  # the node's own consumer, with the envelope from the stream
            )
            assert sorted(o is not None for o in outcomes) == [False, True]
            replay = await keys.begin("terminal", key, "sha", "another-id", stale_after=30)
            assert (replay.state, replay.response) == ("replay", answer)
        rows = await inbox.page(NODE, AGENCY, after=0, limit=100)
        assert [r.feed_seq for r in rows] == list(range(1, 41))  # one position each, no gap
    finally:
        await held.close()
        await engine.dispose()


async def test_accepts_made_at_once_store_their_copies_and_answers_together(
    database_url: str,
) -> None:
    """Sixty accepts at once (issue 14, stop 30): their own copies and answers go in fewer
    statements than accepts; each is answered, each copy at one position, gapless; a copy the
    node's own consumer stored first takes no second position, and its answer is kept."""
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=8)
    sessions = session_factory(engine)
    held = HeldConnections(engine, size=2)
    inbox, keys = SqlInbox(sessions, held=held), SqlIdempotencyStore(sessions, held=held)
    try:
        for n in range(60):
            claim = await keys.begin(
                "terminal", f"key-{n}", "sha", item(n).alert_id, stale_after=30
            )
            assert claim.state == "new"
        assert await inbox.add(item(7))  # the node's own consumer got there first

        outcomes = await asyncio.gather(
            *(
                inbox.add(item(n), completes=Completion("terminal", f"key-{n}", {"n": n}))
                for n in range(60)
            )
        )
        assert outcomes[7] is None
        assert sorted(o.feed_seq for o in outcomes if o is not None) == list(range(2, 61))
        rows = await inbox.page(NODE, AGENCY, after=0, limit=100)
        assert [r.feed_seq for r in rows] == list(range(1, 61))  # one position each, no gap
        for n in range(60):
            replay = await keys.begin("terminal", f"key-{n}", "sha", "other", stale_after=30)
            assert (replay.state, replay.response) == ("replay", {"n": n})
        statements, copies = inbox.answered_groups
        assert copies == 60
        assert statements < 60, statements
    finally:
        await held.close()
        await engine.dispose()


async def test_new_keys_claimed_at_once_share_statements_and_each_key_is_claimed_once(
    database_url: str,
) -> None:
    """Sixty accepts' claims at once (issue 14, stop 30) take fewer statements than claims once
    as many as the held connections are in flight; a key claimed twice at once is one
    request's, the other told it is in progress; a key twice in one statement is claimed once."""
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=8)
    held = HeldConnections(engine, size=2)
    keys = SqlIdempotencyStore(session_factory(engine), held=held)
    try:
        results = await asyncio.gather(
            *(
                keys.begin("terminal", f"key-{n}", "sha", f"alert-{n}", stale_after=30)
                for n in range(60)
            ),
            keys.begin("terminal", "key-5", "sha", "alert-again", stale_after=30),
            return_exceptions=True,
        )
        twice = [results[5], results[60]]
        claimed = next(r for r in twice if isinstance(r, IdempotencyBegin))
        assert claimed.state == "new"
        assert any(isinstance(r, IdempotencyInProgress) for r in twice), twice
        others = [r for n, r in enumerate(results[:60]) if n != 5]
        assert all(isinstance(r, IdempotencyBegin) and r.state == "new" for r in others), others
        statements, claims = keys.claim_groups
        assert claims == 61
        assert statements < 61, statements

        won = await keys.claim_new("terminal", [("dup", "sha", "a-1"), ("dup", "sha", "a-2")])
        assert won == {"dup"}
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT key, alert_id FROM idempotency_keys"
                        " WHERE key IN ('dup', 'key-5') ORDER BY key"
                    )
                )
            ).all()
        # The row of the claim that won (its alert id); one row for a key twice in a statement.
        assert [tuple(r) for r in rows] == [("dup", "a-1"), ("key-5", claimed.alert_id)]
    finally:
        await held.close()
        await engine.dispose()


async def test_batches_and_single_inserts_share_one_gapless_order(database_url: str) -> None:
    """Delivery stores a batch in one insert (``add_batch``) while ingest stores one at a time:
    positions stay gapless and each batch's are consecutive; a redelivered batch, or one item of
    it stored meanwhile, takes no position."""
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=8)
    inbox = SqlInbox(session_factory(engine))
    batches = [[item(n) for n in range(start, start + 16)] for start in range(0, 160, 16)]
    try:

        async def deliver(batch: list[InboxItem]) -> None:
            stored = await inbox.add_batch(batch)
            positions = [None if s is None else s.feed_seq for s in stored]
            assert None not in positions
            first = positions[0]
            assert first is not None
            assert positions == list(range(first, first + len(batch)))  # consecutive
            assert await inbox.add_batch(batch) == [None] * len(batch)  # redelivered

        async def single(numbers: range) -> None:
            for n in numbers:
                assert await inbox.add(item(n))

        await asyncio.gather(*(deliver(b) for b in batches), single(range(160, 200)))
        # A batch in which one alert was stored meanwhile, and one alert twice: the others only.
        mixed = [item(200), item(5), item(201), item(200)]
        stored = await inbox.add_batch(mixed)
        assert [None if s is None else s.feed_seq for s in stored] == [201, None, 202, None]
        assert [None if s is None else s.alert_id for s in stored] == [
            item(200).alert_id,
            None,
            item(201).alert_id,
            None,
        ]
        rows = await inbox.page(NODE, AGENCY, after=0, limit=500)
        assert [r.feed_seq for r in rows] == list(range(1, 203))  # gapless
        # What delivery compares an own alert met again with: one read for a batch.
        digests = await inbox.stored_digests(NODE, [item(5).alert_id, "not-stored"])
        assert digests == {item(5).alert_id: item(5).envelope_sha256}
        assert len({r.alert_id for r in rows}) == 202
    finally:
        await engine.dispose()


async def test_vault_rows_are_stored_with_their_alerts_in_one_call(database_url: str) -> None:
    """The retention vault's rows go in with the inbox rows they belong to (issue 14: one round
    trip, one transaction, never one without the other); a row the vault has already is kept
    as it is (a redelivery); every column comes back as given. One WAL flush per store: the
    vault's rows wait for the same commit as the alert."""
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=1)  # one server process: its own fsyncs
    sessions = session_factory(engine)
    inbox, vault = SqlInbox(sessions), SqlRetentionStore(sessions)

    async def wal_fsyncs() -> int:
        async with engine.connect() as conn:
            await conn.exec_driver_sql("SELECT pg_stat_force_next_flush()")
            await conn.commit()  # the flag is acted on at the end of the next transaction
            await conn.exec_driver_sql("SELECT 1")
            await conn.commit()
            count = await conn.scalar(
                text("SELECT sum(fsyncs) FROM pg_stat_io WHERE object = 'wal'")
            )
        return int(count or 0)

    try:
        before = await wal_fsyncs()
        for n in range(10):
            stored = await inbox.add(item(n), kept=retained(n))
            assert stored is not None
            assert stored.feed_seq == n + 1
        assert await wal_fsyncs() - before >= 10  # each store waited for its flush
        batch = await inbox.add_batch(
            [item(n) for n in range(10, 20)], kept=[retained(n) for n in range(10, 20)]
        )
        assert [s.feed_seq for s in batch if s is not None] == list(range(11, 21))
        # Redelivered, with another row for one of them: nothing stored, the first row kept.
        other = dataclasses.replace(retained(3), agreement_id="another")
        assert await inbox.add_batch([item(3)], kept=[other]) == [None]
        assert await vault.get(NODE, item(3).alert_id) == retained(3)
        rows = await vault.many(NODE, [item(n).alert_id for n in range(20)])
        assert rows == {item(n).alert_id: retained(n) for n in range(20)}  # columns as given
    finally:
        await engine.dispose()


def retained(n: int) -> RetainedNominal:
    at = datetime(2026, 12, 4, tzinfo=UTC)
    return RetainedNominal(
        node_id=NODE,
        alert_id=f"alert-{n:05d}",
        role="recipient",
        agency_id=AGENCY,
        origin_agency="kg-agency",
        border_pair="KG-TJ",
        kind="seizure",
        agreement_id="mou-kg-tj",
        agreement_ids=("mou-kg-tj", "mou, with a comma"),
        envelope_sha256=f"{n:064x}",
        created_at=at,
        expires_at=at + timedelta(days=30),
        max_until=at + timedelta(days=90),
        sealed=SealedNominal(day=date(2027, 1, 3), wrapped_key=b"\x00wrapped", sealed_part=b"\xff"),
    )
