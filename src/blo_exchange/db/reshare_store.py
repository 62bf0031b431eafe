"""Re-share requests in Postgres: the ``reshare_requests`` table and its store.

Node state, like the inbox: each node taking part in a request (the requesting node and the
origin node) keeps its own row, keyed by its node id. Rows change state (pending → approved →
executed, or → denied); the signed records on the bus and their ledger entries are the history.
The table is created by migration ``0003``; the mapping shares ``tables.Base``'s naming convention.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Index, Text, func, select, update
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.orm import Mapped, mapped_column

from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.tables import TZ, AgencyRow, Base
from blo_exchange.services.reshare_model import ReshareRequest, ReshareStatus

__all__ = ["ReshareRow", "SqlAgencies", "SqlReshareStore"]


class ReshareRow(Base):
    """One node's view of one re-share request (no alert content; the reason is metadata)."""

    __tablename__ = "reshare_requests"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    request_id: Mapped[str] = mapped_column(Text, primary_key=True)
    alert_id: Mapped[str] = mapped_column(Text)
    border_pair: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    tlp: Mapped[str] = mapped_column(Text)
    origin_agency: Mapped[str] = mapped_column(Text)
    origin_node: Mapped[str] = mapped_column(Text)
    requesting_agency: Mapped[str] = mapped_column(Text)
    requesting_node: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(Text)
    target_agency: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    restricted: Mapped[bool] = mapped_column(Boolean)
    agreement_ids: Mapped[list[str]] = mapped_column(ARRAY(Text))
    status: Mapped[str] = mapped_column(Text)
    requested_at: Mapped[datetime] = mapped_column(TZ)
    decided_by: Mapped[str | None] = mapped_column(Text)
    decided_at: Mapped[datetime | None] = mapped_column(TZ)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    new_alert_id: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (Index("ix_reshare_requests_node_alert", "node_id", "alert_id"),)


def _request(row: ReshareRow) -> ReshareRequest:
    return ReshareRequest(
        node_id=row.node_id,
        request_id=row.request_id,
        alert_id=row.alert_id,
        border_pair=row.border_pair,
        kind=row.kind,
        tlp=row.tlp,
        origin_agency=row.origin_agency,
        origin_node=row.origin_node,
        requesting_agency=row.requesting_agency,
        requesting_node=row.requesting_node,
        requested_by=row.requested_by,
        target_agency=row.target_agency,
        reason=row.reason,
        restricted=row.restricted,
        agreement_ids=tuple(row.agreement_ids),
        status=ReshareStatus(row.status),
        requested_at=row.requested_at,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
        decision_reason=row.decision_reason,
        new_alert_id=row.new_alert_id,
    )


class SqlReshareStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def add(self, request: ReshareRequest) -> bool:
        values: dict[str, Any] = {
            "node_id": request.node_id,
            "request_id": request.request_id,
            "alert_id": request.alert_id,
            "border_pair": request.border_pair,
            "kind": request.kind,
            "tlp": request.tlp,
            "origin_agency": request.origin_agency,
            "origin_node": request.origin_node,
            "requesting_agency": request.requesting_agency,
            "requesting_node": request.requesting_node,
            "requested_by": request.requested_by,
            "target_agency": request.target_agency,
            "reason": request.reason,
            "restricted": request.restricted,
            "agreement_ids": list(request.agreement_ids),
            "status": request.status.value,
            "requested_at": request.requested_at,
            "decided_by": request.decided_by,
            "decided_at": request.decided_at,
            "decision_reason": request.decision_reason,
            "new_alert_id": request.new_alert_id,
        }
        async with self._sessions.begin() as session:
            inserted = await session.scalar(
                insert(ReshareRow)
                .values(**values)
                .on_conflict_do_nothing(index_elements=["node_id", "request_id"])
                .returning(ReshareRow.request_id)
            )
        return inserted is not None

    async def get(self, node_id: str, request_id: str) -> ReshareRequest | None:
        async with self._sessions() as session:
            row = await session.get(ReshareRow, (node_id, request_id))
        return None if row is None else _request(row)

    async def for_alert(self, node_id: str, alert_id: str) -> list[ReshareRequest]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(ReshareRow)
                .where(ReshareRow.node_id == node_id, ReshareRow.alert_id == alert_id)
                .order_by(ReshareRow.requested_at, ReshareRow.request_id)
            )
            return [_request(r) for r in rows]

    async def transition(
        self,
        node_id: str,
        request_id: str,
        *,
        allowed_from: Collection[ReshareStatus],
        to: ReshareStatus,
        at: datetime,
        decided_by: str | None = None,
        decision_reason: str | None = None,
        new_alert_id: str | None = None,
        clear_decision: bool = False,
    ) -> ReshareRequest | None:
        values: dict[str, Any] = {"status": to.value, "updated_at": func.now()}
        if clear_decision:
            values |= {
                "decided_by": None,
                "decided_at": None,
                "decision_reason": None,
                "new_alert_id": None,
            }
        if to in (ReshareStatus.APPROVED, ReshareStatus.DENIED) and not clear_decision:
            values["decided_at"] = at
        for name, value in (
            ("decided_by", decided_by),
            ("decision_reason", decision_reason),
            ("new_alert_id", new_alert_id),
        ):
            if value is not None:
                values[name] = value
        async with self._sessions.begin() as session:
            row = await session.scalar(
                update(ReshareRow)
                .where(
                    ReshareRow.node_id == node_id,
                    ReshareRow.request_id == request_id,
                    ReshareRow.status.in_([s.value for s in allowed_from]),
                )
                .values(**values)
                .returning(ReshareRow)
            )
            return None if row is None else _request(row)


class SqlAgencies:
    """Whether an agency is in the directory (the ``AgencyLookup`` port)."""

    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def agency_exists(self, agency_id: str) -> bool:
        async with self._sessions() as session:
            return await session.get(AgencyRow, agency_id) is not None
