"""The ``nominal_retention`` table: each node's nominal blocks under retention (the Postgres
adapter of ``services.retention.RetentionStore``). Holds no key: a sealed part here opens only
with the epoch key file of its day."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert

from blo_exchange.crypto.retention import SealedNominal
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.tables import NominalRetentionRow
from blo_exchange.services.retention import RetainedNominal

__all__ = ["SqlRetentionStore"]


class SqlRetentionStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def add(self, row: RetainedNominal) -> bool:
        async with self._sessions.begin() as session:
            inserted = await session.scalar(
                insert(NominalRetentionRow)
                .values(**_values(row), **_identity(row))
                .on_conflict_do_nothing(index_elements=["node_id", "alert_id"])
                .returning(NominalRetentionRow.alert_id)
            )
        return inserted is not None

    async def get(self, node_id: str, alert_id: str) -> RetainedNominal | None:
        async with self._sessions() as session:
            row = await session.get(NominalRetentionRow, (node_id, alert_id))
        return None if row is None else _retained(row)

    async def many(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, RetainedNominal]:
        if not alert_ids:
            return {}
        rows = await self._select(
            NominalRetentionRow.node_id == node_id,
            NominalRetentionRow.alert_id.in_(list(alert_ids)),
        )
        return {r.alert_id: r for r in rows}

    async def due(self, node_id: str, at: datetime) -> list[RetainedNominal]:
        return await self._select(
            NominalRetentionRow.node_id == node_id,
            NominalRetentionRow.role == "recipient",
            NominalRetentionRow.erased_at.is_(None),
            NominalRetentionRow.expires_at <= at,
        )

    async def expiring(self, node_id: str, before: datetime) -> list[RetainedNominal]:
        return await self._select(
            NominalRetentionRow.node_id == node_id,
            NominalRetentionRow.role == "origin",
            NominalRetentionRow.expires_at < before,
        )

    async def update(self, row: RetainedNominal, *, if_sealed_on: date | None = None) -> bool:
        where = [
            NominalRetentionRow.node_id == row.node_id,
            NominalRetentionRow.alert_id == row.alert_id,
        ]
        if if_sealed_on is not None:
            where += [
                NominalRetentionRow.erased_at.is_(None),
                NominalRetentionRow.epoch_day == if_sealed_on,
            ]
        async with self._sessions.begin() as session:
            updated = await session.scalar(
                update(NominalRetentionRow)
                .where(*where)
                .values(**_values(row))
                .returning(NominalRetentionRow.alert_id)
            )
        return updated is not None

    async def _select(self, *where: object) -> list[RetainedNominal]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(NominalRetentionRow)
                    .where(*where)  # type: ignore[arg-type]
                    .order_by(NominalRetentionRow.expires_at, NominalRetentionRow.alert_id)
                )
            ).all()
        return [_retained(r) for r in rows]


def _identity(row: RetainedNominal) -> dict[str, object]:
    return {
        "node_id": row.node_id,
        "alert_id": row.alert_id,
        "role": row.role,
        "agency_id": row.agency_id,
        "origin_agency": row.origin_agency,
        "border_pair": row.border_pair,
        "kind": row.kind,
        "agreement_id": row.agreement_id,
        "agreement_ids": list(row.agreement_ids),
        "envelope_sha256": row.envelope_sha256,
        "created_at": row.created_at,
        "max_until": row.max_until,
    }


def _values(row: RetainedNominal) -> dict[str, object]:
    sealed = row.sealed
    return {
        "expires_at": row.expires_at,
        "epoch_day": None if sealed is None else sealed.day,
        "wrapped_key": None if sealed is None else sealed.wrapped_key,
        "sealed_part": None if sealed is None else sealed.sealed_part,
        "decision": row.decision,
        "decided_by": row.decided_by,
        "reason": row.reason,
        "erased_at": row.erased_at,
    }


def _retained(row: NominalRetentionRow) -> RetainedNominal:
    sealed = None
    if row.epoch_day is not None and row.wrapped_key is not None and row.sealed_part is not None:
        sealed = SealedNominal(
            day=row.epoch_day, wrapped_key=row.wrapped_key, sealed_part=row.sealed_part
        )
    return RetainedNominal(
        node_id=row.node_id,
        alert_id=row.alert_id,
        role=row.role,
        agency_id=row.agency_id,
        origin_agency=row.origin_agency,
        border_pair=row.border_pair,
        kind=row.kind,
        agreement_id=row.agreement_id,
        agreement_ids=tuple(row.agreement_ids),
        envelope_sha256=row.envelope_sha256,
        created_at=row.created_at,
        expires_at=row.expires_at,
        max_until=row.max_until,
        sealed=sealed,
        decision=row.decision,
        decided_by=row.decided_by,
        reason=row.reason,
        erased_at=row.erased_at,
    )
