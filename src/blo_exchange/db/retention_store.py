"""The ``nominal_retention`` table: each node's nominal blocks under retention (the Postgres
adapter of ``services.retention.RetentionStore``). Holds no key: a sealed part here opens only
with the epoch key file of its day."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import select, update

from blo_exchange.crypto.retention import SealedNominal
from blo_exchange.db.engine import SessionFactory, engine_of
from blo_exchange.db.tables import NominalRetentionRow
from blo_exchange.services.retention import RetainedNominal

__all__ = ["VAULT_INSERT_SQL", "SqlRetentionStore", "vault_columns"]


# The statements on the delivery and feed paths, as the driver's SQL (like ``node_store``'s):
# building and caching SQLAlchemy's compiled form on each call costs more than the statement.
_COLUMNS = (
    "node_id",
    "alert_id",
    "role",
    "agency_id",
    "origin_agency",
    "border_pair",
    "kind",
    "agreement_id",
    "agreement_ids",
    "envelope_sha256",
    "created_at",
    "max_until",
    "expires_at",
    "epoch_day",
    "wrapped_key",
    "sealed_part",
    "decision",
    "decided_by",
    "reason",
    "erased_at",
)
# The vault rows of what ``SqlInbox`` stores, inserted in the WITH of its store: one statement,
# one transaction and one round trip with the inbox rows they belong to. Its parameters are $16
# on (after the store's fifteen): one array a column, as ``vault_columns`` gives them
# (``agreement_ids``, itself an array, as one JSON array a row); a row present is skipped.
VAULT_INSERT_SQL = (
    "INSERT INTO nominal_retention (node_id, alert_id, role, agency_id, origin_agency,"
    " border_pair, kind, agreement_id, agreement_ids, envelope_sha256, created_at, max_until,"
    " expires_at, epoch_day, wrapped_key, sealed_part, decision, decided_by, reason, erased_at)"
    " SELECT u.node_id, u.alert_id, u.role, u.agency_id, u.origin_agency, u.border_pair, u.kind,"
    " u.agreement_id, ARRAY(SELECT jsonb_array_elements_text(u.agreement_ids)),"
    " u.envelope_sha256, u.created_at, u.max_until, u.expires_at, u.epoch_day, u.wrapped_key,"
    " u.sealed_part, u.decision, u.decided_by, u.reason, u.erased_at"
    " FROM unnest($16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[],"
    " $22::text[], $23::text[], $24::jsonb[], $25::text[], $26::timestamptz[],"
    " $27::timestamptz[], $28::timestamptz[], $29::date[], $30::bytea[], $31::bytea[],"
    " $32::text[], $33::text[], $34::text[], $35::timestamptz[]) AS u(node_id, alert_id, role,"
    " agency_id, origin_agency, border_pair, kind, agreement_id, agreement_ids,"
    " envelope_sha256, created_at, max_until, expires_at, epoch_day, wrapped_key, sealed_part,"
    " decision, decided_by, reason, erased_at)"
    " ON CONFLICT (node_id, alert_id) DO NOTHING"
)
_MANY_SQL = (
    "SELECT node_id, alert_id, role, agency_id, origin_agency, border_pair, kind, agreement_id,"
    " agreement_ids, envelope_sha256, created_at, max_until, expires_at, epoch_day, wrapped_key,"
    " sealed_part, decision, decided_by, reason, erased_at"
    " FROM nominal_retention WHERE node_id = $1 AND alert_id = ANY($2)"
)


def vault_columns(rows: Sequence[RetainedNominal]) -> tuple[list[object], ...]:
    """``VAULT_INSERT_SQL``'s parameters: one list a column, in ``_COLUMNS``' order."""
    fields = [{**_identity(row), **_values(row)} for row in rows]
    for each in fields:
        each["agreement_ids"] = json.dumps(each["agreement_ids"])
    return tuple([each[name] for each in fields] for name in _COLUMNS)


class SqlRetentionStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions
        self._engine = engine_of(sessions)

    async def get(self, node_id: str, alert_id: str) -> RetainedNominal | None:
        return (await self.many(node_id, [alert_id])).get(alert_id)

    async def many(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, RetainedNominal]:
        if not alert_ids:
            return {}
        async with self._engine.connect() as conn:
            rows = (await conn.exec_driver_sql(_MANY_SQL, (node_id, list(alert_ids)))).all()
        return {row.alert_id: _retained(row) for row in rows}

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


def _retained(row: Any) -> RetainedNominal:
    """From an ORM row or a driver row: the same attribute names."""
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
