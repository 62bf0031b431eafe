"""A node's own state in Postgres: idempotency records and its inbox of sealed envelopes."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection

from blo_exchange.db.engine import (
    SessionFactory,
    column_arrays,
    engine_of,
    in_transaction,
)
from blo_exchange.db.grouped import GroupedCalls
from blo_exchange.db.held_connections import HELD, HeldConnections
from blo_exchange.db.retention_store import VAULT_INSERT_SQL, vault_columns
from blo_exchange.db.tables import IdempotencyRow, InboxRow, RejectionRow
from blo_exchange.errors import IdempotencyInProgress, IdempotencyMismatch
from blo_exchange.services.own_copies import OwnCopies
from blo_exchange.services.ports import (
    Completion,
    IdempotencyBegin,
    InboxItem,
    Rejection,
    RetainedNominal,
)

__all__ = ["SqlIdempotencyStore", "SqlInbox"]

_RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated_at`` of an abandoned attempt: older than any ``stale_after``."""

_IDEMPOTENCY = cast(Table, IdempotencyRow.__table__)
_INBOX = cast(Table, InboxRow.__table__)

# The statements of every accept, as the driver's SQL: SQLAlchemy would build, key and
# look up a compiled form of each on every call, which costs more than the statement does.
_CLAIM_SQL = (
    "INSERT INTO idempotency_keys (principal_id, key, request_sha256, alert_id, state)"
    " VALUES ($1, $2, $3, $4, 'pending')"
    " ON CONFLICT (principal_id, key) DO NOTHING RETURNING alert_id"
)
# New keys claimed in one statement (a ``:batch`` chunk's, or accepts made at once): the alert
# ids of the rows it inserted (a key there before, or twice in the call, inserts once at most).
_CLAIM_MANY_SQL = (
    "WITH claimed AS (INSERT INTO idempotency_keys"
    " (principal_id, key, request_sha256, alert_id, state)"
    " SELECT u.principal_id, u.key, u.request_sha256, u.alert_id, 'pending'"
    " FROM unnest($1::text[], $2::text[], $3::text[], $4::text[])"
    " AS u(principal_id, key, request_sha256, alert_id)"
    " ON CONFLICT (principal_id, key) DO NOTHING RETURNING alert_id)"
    " SELECT coalesce(array_agg(alert_id), '{}') FROM claimed"
)
_DIGESTS_SQL = (
    "SELECT alert_id, envelope_sha256 FROM node_inbox WHERE node_id = $1"
    " AND alert_id = ANY($2::text[])"
)
_COMPLETE_SQL = (
    "UPDATE idempotency_keys SET state = 'done', response = $3, updated_at = now()"
    " WHERE principal_id = $1 AND key = $2"
)
# Stores items at the node's next feed positions, and a request's answer with them: one call,
# one round trip, one transaction (migration 0012 has the function and why it is gapless). It
# gives back each item's position, NULL for one stored already (or twice in the call).
_INBOX_STORE_SQL = (
    "SELECT blo_inbox_store($1, $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::text[], $8::text[], $9::timestamptz[], $10::bigint[], $11::bytea[], $12::text[],"
    " $13, $14, $15::jsonb)"
)
# Preceded, when there are, by CTEs of the retention vault's rows of these alerts
# (RetainingInbox, VAULT_INSERT_SQL: $16 on) and of a batch's answers (below).
_ANSWERS_CTE = (
    "done AS (UPDATE idempotency_keys k SET state = 'done', response = u.response,"
    " updated_at = now() FROM unnest({}::text[], {}::text[], {}::jsonb[])"
    " AS u(principal_id, key, response) WHERE k.principal_id = u.principal_id AND k.key = u.key)"
)
# A batch's answers (ingest's ``:batch`` chunk), recorded by the statement that stores the
# envelopes they answer for: their three arrays after the function's ($16 on), or after the
# vault's rows too ($36 on).
_ANSWERS_SQL = _ANSWERS_CTE.format("$16", "$17", "$18")
_ANSWERS_AFTER_KEPT_SQL = _ANSWERS_CTE.format("$36", "$37", "$38")


ANSWERED_AT_ONCE = 50
"""Accepts' own copies stored in one statement at most (as a ``:batch`` chunk's)."""

CLAIMED_AT_ONCE = 50
CLAIMS_IN_FLIGHT = HELD
"""Claims of new keys sent at once before the next ones wait and go together: as many as the
held connections, so claims (which wait for no lock, unlike the stores) group only in a burst."""

_Claim = tuple[str, str, str, str]
"""A new key's claim: principal id, key, request digest, alert id."""


@dataclass(frozen=True)
class _Answered:
    """An accept's own copy, its answer, and its retention vault row if it has one."""

    item: InboxItem
    completes: Completion
    kept: RetainedNominal | None


class SqlIdempotencyStore:
    """Statements on the node's held connections (``held_connections``; a pooled one when none is
    idle), no ORM session: they run on every accept, where the session's set-up and the ORM's
    statement handling cost more than the statements themselves."""

    def __init__(self, sessions: SessionFactory, *, held: HeldConnections | None = None) -> None:
        self._engine = engine_of(sessions)
        self._held = HeldConnections(self._engine, size=0) if held is None else held
        self._claims: GroupedCalls[_Claim, bool] = GroupedCalls(
            self._claim_one, self._claim_group, most=CLAIMED_AT_ONCE, in_flight=CLAIMS_IN_FLIGHT
        )

    @property
    def claim_groups(self) -> tuple[int, int]:
        """Statements that claimed accepts' new keys; how many keys."""
        return self._claims.groups, self._claims.values

    async def begin(
        self, principal_id: str, key: str, request_sha256: str, alert_id: str, *, stale_after: float
    ) -> IdempotencyBegin:
        # A new key (nearly every request) is one statement in autocommit: one round trip, not
        # BEGIN, INSERT, COMMIT (issue 14), shared with the claims made meanwhile when
        # CLAIMS_IN_FLIGHT are running. A key seen before takes the transaction below.
        with contextlib.suppress(DBAPIError):
            if await self._claims((principal_id, key, request_sha256, alert_id)):
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

    async def claim_new(
        self, principal_id: str, claims: Sequence[tuple[str, str, str]]
    ) -> set[str]:
        if not claims:
            return set()
        inserted = await self._claim_group([(principal_id, *claim) for claim in claims])
        return {key for (key, _, _), new in zip(claims, inserted, strict=True) if new}

    async def _claim_one(self, claim: _Claim) -> bool:
        return await self._held.fetchval(_CLAIM_SQL, claim) is not None

    async def _claim_group(self, claims: Sequence[_Claim]) -> list[bool]:
        """Whether each claim inserted its row (each alert id is new: it names one claim)."""
        columns = [list(column) for column in zip(*claims, strict=True)]
        claimed = set(await self._held.fetchval(_CLAIM_MANY_SQL, columns))
        return [alert_id in claimed for _, _, _, alert_id in claims]

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
    def __init__(self, sessions: SessionFactory, *, held: HeldConnections | None = None) -> None:
        self._sessions = sessions
        self._engine = engine_of(sessions)
        self._held = HeldConnections(self._engine, size=0) if held is None else held
        # Digests of envelopes this process sealed and committed, newest last: the node's own
        # consumer meets them moments later and need not verify and open what it just sealed.
        self._own = OwnCopies()
        self._answered: dict[str, GroupedCalls[_Answered, int | None]] = {}  # by node

    @property
    def answered_groups(self) -> tuple[int, int]:
        """Statements that stored accepts' own copies with their answers; how many copies."""
        groups = self._answered.values()
        return sum(g.groups for g in groups), sum(g.values for g in groups)

    def sealed_here(self, envelope_sha256: str) -> bool:
        return envelope_sha256 in self._own

    def sealing(self, envelope_sha256: str) -> AbstractContextManager[None]:
        return self._own.sealing(envelope_sha256)

    async def wait_sealed(self, envelope_sha256: str, timeout: float) -> bool:
        return await self._own.wait_sealed(envelope_sha256, timeout)

    async def add(
        self,
        item: InboxItem,
        *,
        completes: Completion | None = None,
        kept: RetainedNominal | None = None,
    ) -> InboxItem | None:
        """One item; with ``completes``, an accept's own copy and its answer, stored with those
        of the accepts made meanwhile (:class:`GroupedCalls`: one statement, one commit)."""
        if completes is None:
            (position,) = await self._store(
                item.node_id, [item], (None, None, None), () if kept is None else [kept]
            )
            return None if position is None else replace(item, feed_seq=position)
        grouped = self._answered.get(item.node_id)
        if grouped is None:
            grouped = self._answered[item.node_id] = GroupedCalls(
                self._store_answered, self._store_answered_group, most=ANSWERED_AT_ONCE
            )
        position = await grouped(_Answered(item, completes, kept))
        if position is None:
            return None
        self._own.stored(item.envelope_sha256)
        return replace(item, feed_seq=position)

    async def _store_answered(self, one: _Answered) -> int | None:
        done = (one.completes.principal_id, one.completes.key, json.dumps(one.completes.response))
        kept = () if one.kept is None else [one.kept]
        (position,) = await self._store(one.item.node_id, [one.item], done, kept)
        return position

    async def _store_answered_group(self, group: list[_Answered]) -> list[int | None]:
        """As :meth:`add_batch` stores a ``:batch`` chunk's own copies with their answers."""
        return await self._store(
            group[0].item.node_id,
            [one.item for one in group],
            (None, None, None),
            [one.kept for one in group if one.kept is not None],
            [one.completes for one in group],
        )

    async def add_batch(
        self,
        items: Sequence[InboxItem],
        *,
        kept: Sequence[RetainedNominal] = (),
        completes: Sequence[Completion] = (),
    ) -> list[InboxItem | None]:
        """One call, one transaction, for a delivered batch (items of one node), or an accepted
        one's own copies with their answers (``completes``).

        A batch of redeliveries only looks and takes no lock. Safe to run twice (see
        ``in_autocommit``): what the first run committed is "already stored" to the second.
        """
        if not items:
            return []
        if completes and len(completes) != len(items):
            raise ValueError("one answer per item")
        node_id = items[0].node_id
        if any(item.node_id != node_id for item in items):
            raise ValueError("a batch is one node's")
        positions = await self._store(node_id, items, (None, None, None), kept, completes)
        stored = [
            None if position is None else replace(item, feed_seq=position)
            for item, position in zip(items, positions, strict=True)
        ]
        if completes:
            for item in stored:
                if item is not None:
                    self._own.stored(item.envelope_sha256)
        return stored

    async def _store(
        self,
        node_id: str,
        items: Sequence[InboxItem],
        done: tuple[str | None, ...],
        kept: Sequence[RetainedNominal],
        answers: Sequence[Completion] = (),
    ) -> list[int | None]:
        columns = column_arrays(
            items,
            *("alert_id", "agency_id", "origin_agency", "origin_node", "border_pair", "kind"),
            *("tlp", "created_at", "stream_seq", "envelope", "envelope_sha256"),
        )
        ctes: list[str] = []
        params: tuple[Any, ...] = (node_id, *columns, *done)
        if kept:
            ctes.append("kept AS (" + VAULT_INSERT_SQL + ")")
            params = (*params, *vault_columns(kept))
        if answers:
            ctes.append(_ANSWERS_AFTER_KEPT_SQL if kept else _ANSWERS_SQL)
            params = (
                *params,
                [a.principal_id for a in answers],
                [a.key for a in answers],
                [json.dumps(a.response) for a in answers],
            )
        sql = ("WITH " + ", ".join(ctes) + " " if ctes else "") + _INBOX_STORE_SQL
        return list(await self._held.fetchval(sql, params))

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
