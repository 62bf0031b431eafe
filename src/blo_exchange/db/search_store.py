"""The search index in the node's Postgres: ``search_alerts`` and ``search_keys`` (migration 0009).

The Postgres side of ``services.search_index.SearchStore``. Keys are match keys of decrypted
content, so these rows are personal data of this node's agency: nothing here is published, and
:meth:`SqlSearchStore.forget` deletes them. The mappings share ``tables.Base``'s naming convention.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast

from sqlalchemy import (
    BigInteger,
    ForeignKeyConstraint,
    Index,
    Table,
    Text,
    and_,
    delete,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.orm import Mapped, aliased, mapped_column

from blo_exchange.db.engine import column_arrays
from blo_exchange.db.held_connections import HeldConnections
from blo_exchange.db.tables import TZ, Base
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.services.search_index import IndexedAlert

__all__ = ["SearchAlertRow", "SearchKeyRow", "SqlSearchStore"]


class SearchAlertRow(Base):
    """One indexed inbox item: what a lookout filters on (no content beyond that)."""

    __tablename__ = "search_alerts"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    agency_id: Mapped[str] = mapped_column(Text)
    feed_seq: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(Text)
    origin_agency: Mapped[str] = mapped_column(Text)
    valid_until: Mapped[datetime | None] = mapped_column(TZ)
    supersedes: Mapped[str | None] = mapped_column(Text)
    indexed_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())

    __table_args__ = (
        Index("ix_search_alerts_node_feed_seq", "node_id", "agency_id", "feed_seq", unique=True),
        Index("ix_search_alerts_supersedes", "node_id", "supersedes"),
    )


class SearchKeyRow(Base):
    """A match key of one alert's field, from its ``case`` or ``nominal`` part."""

    __tablename__ = "search_keys"

    node_id: Mapped[str] = mapped_column(Text, primary_key=True)
    alert_id: Mapped[str] = mapped_column(Text, primary_key=True)
    field: Mapped[str] = mapped_column(Text, primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)

    __table_args__ = (
        ForeignKeyConstraint(
            ["node_id", "alert_id"],
            ["search_alerts.node_id", "search_alerts.alert_id"],
            ondelete="CASCADE",
        ),
        Index("ix_search_keys_lookup", "node_id", "field", "key"),
    )


_ALERTS = cast(Table, SearchAlertRow.__table__)
_KEYS = cast(Table, SearchKeyRow.__table__)


class SqlSearchStore:
    def __init__(self, engine: AsyncEngine, *, held: HeldConnections | None = None) -> None:
        self._engine = engine
        self._held = HeldConnections(engine, size=0) if held is None else held

    async def indexed_up_to(self, node_id: str, agency_id: str) -> int:
        async with self._engine.connect() as conn:
            last = await conn.scalar(
                select(func.max(_ALERTS.c.feed_seq)).where(
                    _ALERTS.c.node_id == node_id, _ALERTS.c.agency_id == agency_id
                )
            )
        return int(last or 0)

    async def put(self, alerts: Sequence[IndexedAlert]) -> None:
        """Index ``alerts`` and their keys: one statement in autocommit, one round trip (issue
        14). An alert indexed already keeps its keys: only newly stored alerts' keys go in."""
        if not alerts:
            return
        keys = [
            (x.node_id, x.alert_id, key.field.value, key.source, key.key)
            for x in alerts
            for key in x.keys
        ]
        await self._held.fetchval(
            _PUT_SQL,
            (
                *column_arrays(
                    alerts,
                    *("node_id", "alert_id", "agency_id", "feed_seq", "kind", "origin_agency"),
                    *("valid_until", "supersedes"),
                ),
                *([list(column) for column in zip(*keys, strict=True)] if keys else [[]] * 5),
            ),
        )

    async def find(
        self,
        node_id: str,
        agency_id: str,
        field: FieldKind,
        keys: frozenset[str],
        *,
        active_risk_at: datetime | None,
        limit: int,
    ) -> list[str]:
        a, k = _ALERTS.c, _KEYS.c
        query = (
            select(a.alert_id)
            .join(_KEYS, and_(k.node_id == a.node_id, k.alert_id == a.alert_id))
            .where(
                a.node_id == node_id,
                a.agency_id == agency_id,
                k.field == field.value,
                k.key.in_(sorted(keys)),
            )
        )
        if active_risk_at is not None:
            later = aliased(_ALERTS)
            superseded = (
                select(later.c.alert_id)
                .where(
                    later.c.node_id == a.node_id,
                    later.c.agency_id == a.agency_id,
                    later.c.supersedes == a.alert_id,
                    # Only its own origin may supersede an alert: another agency's alert naming
                    # it does not silence it.
                    later.c.origin_agency == a.origin_agency,
                )
                .exists()
            )
            query = query.where(
                a.kind == "risk",
                (a.valid_until.is_(None)) | (a.valid_until > active_risk_at),
                ~superseded,
            )
        query = (
            query.group_by(a.alert_id, a.feed_seq)
            .having(func.count(func.distinct(k.key)) == len(keys))
            .order_by(a.feed_seq.desc())
            .limit(limit)
        )
        async with self._engine.connect() as conn:
            return [str(r) for r in (await conn.scalars(query)).all()]

    async def forget(self, node_id: str, alert_id: str, *, source: str | None) -> int:
        where = [_KEYS.c.node_id == node_id, _KEYS.c.alert_id == alert_id]
        if source is not None:
            where.append(_KEYS.c.source == source)
        async with self._engine.begin() as conn:
            result = await conn.execute(delete(_KEYS).where(*where))
        return int(result.rowcount or 0)


# A fixed statement over arrays (issue 14): a multi-row VALUES is a new statement for every row
# count, compiled by SQLAlchemy and planned by Postgres each time. The keys' foreign key is
# checked at the end of the statement, when the alerts inserted in its WITH are there.
_PUT_SQL = (
    "WITH stored AS (INSERT INTO search_alerts (node_id, alert_id, agency_id, feed_seq, kind,"
    " origin_agency, valid_until, supersedes) SELECT * FROM unnest($1::text[], $2::text[],"
    " $3::text[], $4::bigint[], $5::text[], $6::text[], $7::timestamptz[], $8::text[])"
    " ON CONFLICT (node_id, alert_id) DO NOTHING RETURNING node_id, alert_id)"
    " INSERT INTO search_keys (node_id, alert_id, field, source, key)"
    " SELECT k.* FROM unnest($9::text[], $10::text[], $11::text[], $12::text[], $13::text[])"
    " AS k(node_id, alert_id, field, source, key)"
    " JOIN stored USING (node_id, alert_id) ON CONFLICT DO NOTHING"
)
