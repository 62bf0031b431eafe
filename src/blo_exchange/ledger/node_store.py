"""A node's own state in Postgres: idempotency records and its inbox of sealed envelopes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from blo_exchange.errors import IdempotencyInProgress, IdempotencyMismatch
from blo_exchange.ledger.db import SessionFactory
from blo_exchange.ledger.tables import IdempotencyRow, InboxRow, RejectionRow
from blo_exchange.services.ports import IdempotencyBegin, InboxItem, Rejection

__all__ = ["SqlIdempotencyStore", "SqlInbox"]

_RELEASED = datetime(1970, 1, 1, tzinfo=UTC)
"""``updated_at`` of an abandoned attempt: older than any ``stale_after``."""


class SqlIdempotencyStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def begin(
        self, principal_id: str, key: str, request_sha256: str, alert_id: str, *, stale_after: float
    ) -> IdempotencyBegin:
        async with self._sessions.begin() as session:
            inserted = await session.scalar(
                insert(IdempotencyRow)
                .values(
                    principal_id=principal_id,
                    key=key,
                    request_sha256=request_sha256,
                    alert_id=alert_id,
                    state="pending",
                )
                .on_conflict_do_nothing(index_elements=["principal_id", "key"])
                .returning(IdempotencyRow.alert_id)
            )
            if inserted is not None:
                return IdempotencyBegin(state="new", alert_id=alert_id)
            row = await session.scalar(
                select(IdempotencyRow)
                .where(IdempotencyRow.principal_id == principal_id, IdempotencyRow.key == key)
                .with_for_update()
            )
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
            row.updated_at = now
            return IdempotencyBegin(state="takeover", alert_id=row.alert_id)

    async def complete(self, principal_id: str, key: str, response: dict[str, Any]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(IdempotencyRow)
                .where(IdempotencyRow.principal_id == principal_id, IdempotencyRow.key == key)
                .values(state="done", response=response, updated_at=datetime.now(UTC))
            )

    async def abandon(self, principal_id: str, key: str) -> None:
        # Keep the row and its alert id, only make it stale at once: a publish whose ack was lost
        # may still be in the stream, and the retry must reuse that id for Nats-Msg-Id to dedupe.
        async with self._sessions.begin() as session:
            await session.execute(
                update(IdempotencyRow)
                .where(
                    IdempotencyRow.principal_id == principal_id,
                    IdempotencyRow.key == key,
                    IdempotencyRow.state == "pending",
                )
                .values(updated_at=_RELEASED)
            )


class SqlInbox:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def add(self, item: InboxItem) -> bool:
        async with self._sessions.begin() as session:
            inserted = await session.scalar(
                insert(InboxRow)
                .values(**_values(item))
                .on_conflict_do_nothing(index_elements=["node_id", "alert_id"])
                .returning(InboxRow.alert_id)
            )
        return inserted is not None

    async def get(self, node_id: str, alert_id: str) -> InboxItem | None:
        async with self._sessions() as session:
            row = await session.get(InboxRow, (node_id, alert_id))
        return None if row is None else _item(row)

    async def page(
        self, node_id: str, agency_id: str, *, after_seq: int, limit: int
    ) -> list[InboxItem]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(InboxRow)
                    .where(
                        InboxRow.node_id == node_id,
                        InboxRow.agency_id == agency_id,
                        InboxRow.stream_seq > after_seq,
                    )
                    .order_by(InboxRow.stream_seq)
                    .limit(limit)
                )
            ).all()
        return [_item(r) for r in rows]

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


def _values(item: InboxItem) -> dict[str, Any]:
    return {
        "node_id": item.node_id,
        "alert_id": item.alert_id,
        "agency_id": item.agency_id,
        "origin_agency": item.origin_agency,
        "origin_node": item.origin_node,
        "border_pair": item.border_pair,
        "kind": item.kind,
        "tlp": item.tlp,
        "created_at": item.created_at,
        "stream_seq": item.stream_seq,
        "envelope": item.envelope,
        "envelope_sha256": item.envelope_sha256,
    }


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
    )
