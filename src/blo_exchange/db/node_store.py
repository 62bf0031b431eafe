"""A node's own state in Postgres: idempotency records and its inbox of sealed envelopes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from blo_exchange.db.engine import SessionFactory, column_arrays, engine_of, in_transaction
from blo_exchange.db.tables import IdempotencyRow, InboxRow, RejectionRow
from blo_exchange.errors import IdempotencyInProgress, IdempotencyMismatch
from blo_exchange.services.own_copies import OwnCopies
from blo_exchange.services.ports import Completion, IdempotencyBegin, InboxItem, Rejection

__all__ = ["SqlIdempotencyStore", "SqlInbox"]

_RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated_at`` of an abandoned attempt: older than any ``stale_after``."""


"""How many of its own accepted envelopes a node remembers: far more than the consumer lags."""

_IDEMPOTENCY = cast(Table, IdempotencyRow.__table__)
_INBOX = cast(Table, InboxRow.__table__)

# The three statements of every accept, as the driver's SQL: SQLAlchemy would build, key and
# look up a compiled form of each on every call, which costs more than the statement does.
_CLAIM_SQL = (
    "INSERT INTO idempotency_keys (principal_id, key, request_sha256, alert_id, state)"
    " VALUES ($1, $2, $3, $4, 'pending')"
    " ON CONFLICT (principal_id, key) DO NOTHING RETURNING alert_id"
)
_EXISTS_SQL = "SELECT 1 FROM node_inbox WHERE node_id = $1 AND alert_id = $2"
# Takes the node's next feed position and stores the envelope at it, in one statement. The upsert
# locks the node's head row until the transaction ends: a second insert waits there until the
# first has committed (or rolled back, which gives its position back), so positions become
# visible in the order they are taken, with no gaps. A bigserial would give numbers in order but
# commits out of order: a reader could see 7 before 6 and move its cursor past 6 for ever.
_TAKE_AND_STORE = (
    "head AS ("
    " INSERT INTO node_feed_heads AS h (node_id, last_seq) VALUES ($1, 1)"
    " ON CONFLICT (node_id) DO UPDATE SET last_seq = h.last_seq + 1 RETURNING last_seq)"
    " INSERT INTO node_inbox (node_id, alert_id, agency_id, origin_agency, origin_node,"
    " border_pair, kind, tlp, created_at, stream_seq, envelope, envelope_sha256, feed_seq)"
    " SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, head.last_seq FROM head"
    " ON CONFLICT (node_id, alert_id) DO NOTHING RETURNING alert_id"
)
_STORE_SQL = "WITH " + _TAKE_AND_STORE
# Stored meanwhile by another transaction (we waited for it on the head's lock): give the
# position back. The lock is still ours, so nobody took a later one.
_UNTAKE_SQL = "UPDATE node_feed_heads SET last_seq = last_seq - 1 WHERE node_id = $1"
# A delivered batch, in one transaction (SqlInbox.add_batch): (1) which are stored already, (2) the
# head's lock, (3) which are stored already now that every earlier storer has committed, (4) the
# rows at consecutive positions after the head, in one statement, (5) the head moved past them.
_KNOWN_SQL = "SELECT alert_id FROM node_inbox WHERE node_id = $1 AND alert_id = ANY($2::text[])"
_DIGESTS_SQL = (
    "SELECT alert_id, envelope_sha256 FROM node_inbox WHERE node_id = $1"
    " AND alert_id = ANY($2::text[])"
)
_LOCK_HEAD_SQL = (
    "INSERT INTO node_feed_heads AS h (node_id, last_seq) VALUES ($1, 0)"
    " ON CONFLICT (node_id) DO UPDATE SET last_seq = h.last_seq RETURNING last_seq"
)
_STORE_MANY_SQL = (
    "INSERT INTO node_inbox (node_id, alert_id, agency_id, origin_agency, origin_node,"
    " border_pair, kind, tlp, created_at, stream_seq, envelope, envelope_sha256, feed_seq)"
    " SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::text[], $9::timestamptz[], $10::bigint[], $11::bytea[], $12::text[],"
    " $13::bigint[])"
)
_MOVE_HEAD_SQL = "UPDATE node_feed_heads SET last_seq = $2 WHERE node_id = $1"
_COMPLETE_SQL = (
    "UPDATE idempotency_keys SET state = 'done', response = $3, updated_at = now()"
    " WHERE principal_id = $1 AND key = $2"
)
# The accept path's second transaction in one statement (issue 14): the envelope at the next
# position and the request's answer. No look first: the alert was sealed a moment ago, so only
# the node's own consumer racing it can have stored it (then the position is given back).
# A data-modifying WITH runs to completion whatever the main statement returns.
_COMPLETING = (
    "WITH done AS (UPDATE idempotency_keys SET state = 'done', response = $15,"
    " updated_at = now() WHERE principal_id = $13 AND key = $14), "
)
_STORE_COMPLETING_SQL = _COMPLETING + _TAKE_AND_STORE


class SqlIdempotencyStore:
    """Statements on a pooled connection, no ORM session: they run on every accept, where the
    session's set-up and the ORM's statement handling cost more than the statements themselves."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._engine = engine_of(sessions)
        self._autocommit = self._engine.execution_options(isolation_level="AUTOCOMMIT")

    async def begin(
        self, principal_id: str, key: str, request_sha256: str, alert_id: str, *, stale_after: float
    ) -> IdempotencyBegin:
        # A new key (nearly every request) is one statement in autocommit: one round trip, not
        # BEGIN, INSERT, COMMIT (issue 14). A key seen before takes the transaction below.
        with contextlib.suppress(DBAPIError):
            async with self._autocommit.connect() as conn:
                inserted = await conn.exec_driver_sql(
                    _CLAIM_SQL, (principal_id, key, request_sha256, alert_id)
                )
                if inserted.scalar_one_or_none() is not None:
                    return IdempotencyBegin(state="new", alert_id=alert_id)

        async def claim(conn: AsyncConnection) -> IdempotencyBegin:
            inserted = (
                await conn.exec_driver_sql(
                    _CLAIM_SQL, (principal_id, key, request_sha256, alert_id)
                )
            ).scalar_one_or_none()
            if inserted is not None:
                return IdempotencyBegin(state="new", alert_id=alert_id)
            row = (
                await conn.execute(
                    select(
                        _IDEMPOTENCY.c.request_sha256,
                        _IDEMPOTENCY.c.state,
                        _IDEMPOTENCY.c.response,
                        _IDEMPOTENCY.c.alert_id,
                        _IDEMPOTENCY.c.updated_at,
                    )
                    .where(_of(principal_id, key))
                    .with_for_update()
                )
            ).one_or_none()
            if row is None:  # abandoned between our insert and select: the caller may retry
                raise IdempotencyInProgress("the request with this key is being processed")
            if row.request_sha256 != request_sha256:
                raise IdempotencyMismatch(
                    "this Idempotency-Key was used before with a different request body"
                )
            if row.state == "done" and row.response is not None:
                return IdempotencyBegin(
                    state="replay", alert_id=row.alert_id, response=row.response
                )
            now = datetime.now(UTC)
            if now - row.updated_at < timedelta(seconds=stale_after):
                raise IdempotencyInProgress("the request with this key is being processed")
            # The first attempt died mid-way (a crashed node): take it over, same alert id, so a
            # publish that did reach the stream is deduplicated by its Nats-Msg-Id.
            await conn.execute(
                update(_IDEMPOTENCY).where(_of(principal_id, key)).values(updated_at=now)
            )
            return IdempotencyBegin(state="takeover", alert_id=row.alert_id)

        return await in_transaction(self._engine, claim)

    async def complete(self, principal_id: str, key: str, response: dict[str, Any]) -> None:
        async def done(conn: AsyncConnection) -> None:
            await conn.exec_driver_sql(_COMPLETE_SQL, (principal_id, key, json.dumps(response)))

        await in_transaction(self._engine, done)

    async def abandon(self, principal_id: str, key: str) -> None:
        # Keep the row and its alert id, only make it stale at once: a publish whose ack was lost
        # may still be in the stream, and the retry must reuse that id for Nats-Msg-Id to dedupe.
        async def release(conn: AsyncConnection) -> None:
            await conn.execute(
                update(_IDEMPOTENCY)
                .where(_of(principal_id, key), _IDEMPOTENCY.c.state == "pending")
                .values(updated_at=_RELEASED)
            )

        await in_transaction(self._engine, release)


class SqlInbox:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._engine = engine_of(sessions)
        # Digests of envelopes this process sealed and committed, newest last: the node's own
        # consumer meets them moments later and need not verify and open what it just sealed.
        self._own = OwnCopies()

    def sealed_here(self, envelope_sha256: str) -> bool:
        return envelope_sha256 in self._own

    def sealing(self, envelope_sha256: str) -> AbstractContextManager[None]:
        return self._own.sealing(envelope_sha256)

    async def wait_sealed(self, envelope_sha256: str, timeout: float) -> bool:
        return await self._own.wait_sealed(envelope_sha256, timeout)

    async def add(self, item: InboxItem, *, completes: Completion | None = None) -> bool:
        values = (
            item.node_id,
            item.alert_id,
            item.agency_id,
            item.origin_agency,
            item.origin_node,
            item.border_pair,
            item.kind,
            item.tlp,
            item.created_at,
            item.stream_seq,
            item.envelope,
            item.envelope_sha256,
        )

        async def store(conn: AsyncConnection) -> bool:
            if completes is not None:
                done = (completes.principal_id, completes.key, json.dumps(completes.response))
                stored = await conn.exec_driver_sql(_STORE_COMPLETING_SQL, values + done)
            # A redelivered envelope is common and needs no position: look before taking one.
            elif (await conn.exec_driver_sql(_EXISTS_SQL, (item.node_id, item.alert_id))).first():
                return False
            else:
                stored = await conn.exec_driver_sql(_STORE_SQL, values)
            inserted = stored.scalar_one_or_none() is not None
            if not inserted:
                await conn.exec_driver_sql(_UNTAKE_SQL, (item.node_id,))
            return inserted

        inserted = await in_transaction(self._engine, store)
        if inserted and completes is not None:
            self._own.stored(item.envelope_sha256)
        return inserted

    async def add_batch(self, items: Sequence[InboxItem]) -> list[InboxItem | None]:
        """One transaction and one insert for a delivered batch (items of one node).

        A batch of redeliveries only looks (1) and takes no lock. Safe to run twice (see
        ``in_transaction``): what the first run committed is "already stored" to the second.
        """
        if not items:
            return []
        node_id = items[0].node_id
        if any(item.node_id != node_id for item in items):
            raise ValueError("a batch is one node's")
        ids = [item.alert_id for item in items]

        async def store(conn: AsyncConnection) -> list[int | None]:
            known = await _known(conn, node_id, ids)  # (1)
            if all(alert_id in known for alert_id in ids):
                return [None] * len(items)
            head = (await conn.exec_driver_sql(_LOCK_HEAD_SQL, (node_id,))).scalar_one()  # (2)
            known = await _known(conn, node_id, ids)  # (3)
            positions: list[int | None] = []
            fresh: list[InboxItem] = []
            for item in items:
                if item.alert_id in known:
                    positions.append(None)
                    continue
                known.add(item.alert_id)  # twice in one batch: the first one is stored
                fresh.append(item)
                positions.append(head + len(fresh))
            if fresh:
                await conn.exec_driver_sql(_STORE_MANY_SQL, _columns(node_id, fresh, head))  # (4)
                await conn.exec_driver_sql(_MOVE_HEAD_SQL, (node_id, head + len(fresh)))  # (5)
            return positions

        positions = await in_transaction(self._engine, store)
        return [
            None if position is None else replace(item, feed_seq=position)
            for item, position in zip(items, positions, strict=True)
        ]

    async def get(self, node_id: str, alert_id: str) -> InboxItem | None:
        async with self._sessions() as session:
            row = await session.get(InboxRow, (node_id, alert_id))
        return None if row is None else _item(row)

    async def page(
        self, node_id: str, agency_id: str, *, after: int, limit: int
    ) -> list[InboxItem]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(InboxRow)
                    .where(
                        InboxRow.node_id == node_id,
                        InboxRow.agency_id == agency_id,
                        InboxRow.feed_seq > after,
                    )
                    .order_by(InboxRow.feed_seq)
                    .limit(limit)
                )
            ).all()
        return [_item(r) for r in rows]

    async def stored_digests(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, str]:
        if not alert_ids:
            return {}
        async with self._engine.connect() as conn:
            found = await conn.exec_driver_sql(_DIGESTS_SQL, (node_id, list(alert_ids)))
            return dict(cast(list[tuple[str, str]], found.all()))

    async def last_position(self, node_id: str, agency_id: str) -> int:
        async with self._engine.connect() as conn:
            last = await conn.scalar(
                select(func.max(_INBOX.c.feed_seq)).where(
                    _INBOX.c.node_id == node_id, _INBOX.c.agency_id == agency_id
                )
            )
        return int(last or 0)

    async def reject(self, rejection: Rejection) -> bool:
        async with self._sessions.begin() as session:
            inserted = await session.scalar(
                insert(RejectionRow)
                .values(
                    node_id=rejection.node_id,
                    subject=rejection.subject,
                    stream_seq=rejection.stream_seq,
                    reason=rejection.reason,
                    alert_id=rejection.alert_id,
                    envelope_sha256=rejection.envelope_sha256,
                )
                .on_conflict_do_nothing(index_elements=["node_id", "stream_seq"])
                .returning(RejectionRow.id)
            )
        return inserted is not None

    async def rejections(self, node_id: str) -> list[Rejection]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(RejectionRow)
                    .where(RejectionRow.node_id == node_id)
                    .order_by(RejectionRow.stream_seq)
                )
            ).all()
        return [
            Rejection(
                node_id=r.node_id,
                subject=r.subject,
                stream_seq=r.stream_seq,
                reason=r.reason,
                alert_id=r.alert_id,
                envelope_sha256=r.envelope_sha256,
            )
            for r in rows
        ]


async def _known(conn: AsyncConnection, node_id: str, alert_ids: list[str]) -> set[str]:
    rows = await conn.exec_driver_sql(_KNOWN_SQL, (node_id, alert_ids))
    return {str(row[0]) for row in rows}


def _columns(node_id: str, items: list[InboxItem], head: int) -> tuple[object, ...]:
    """``_STORE_MANY_SQL``'s parameters: the node, then one array per column."""
    return (
        node_id,
        *column_arrays(
            items,
            *("alert_id", "agency_id", "origin_agency", "origin_node", "border_pair", "kind"),
            *("tlp", "created_at", "stream_seq", "envelope", "envelope_sha256"),
        ),
        [head + n for n in range(1, len(items) + 1)],
    )


def _of(principal_id: str, key: str) -> ColumnElement[bool]:
    return and_(_IDEMPOTENCY.c.principal_id == principal_id, _IDEMPOTENCY.c.key == key)


def _item(row: InboxRow) -> InboxItem:
    return InboxItem(
        node_id=row.node_id,
        alert_id=row.alert_id,
        agency_id=row.agency_id,
        origin_agency=row.origin_agency,
        origin_node=row.origin_node,
        border_pair=row.border_pair,
        kind=row.kind,
        tlp=row.tlp,
        created_at=row.created_at,
        stream_seq=row.stream_seq,
        envelope=row.envelope,
        envelope_sha256=row.envelope_sha256,
        feed_seq=row.feed_seq,
    )
