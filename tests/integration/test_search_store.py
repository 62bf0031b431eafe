"""The search index's store on a real Postgres: an alert and its keys go in with one statement,
and an alert indexed already keeps the keys it has."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from blo_exchange.db.engine import create_engine, migrate
from blo_exchange.db.held_connections import HeldConnections
from blo_exchange.db.search_store import SqlSearchStore
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.services.search_index import IndexedAlert, SearchKey

NODE, AGENCY = "blo-test-tj", "tj-agency"


def indexed(n: int, *keys: tuple[FieldKind, str]) -> IndexedAlert:
    return IndexedAlert(
        node_id=NODE,
        agency_id=AGENCY,
        alert_id=f"alert-{n}",
        feed_seq=n,
        kind="risk",
        origin_agency="kg-agency",
        valid_until=datetime(2027, 1, 1, tzinfo=UTC),
        supersedes=None,
        keys=frozenset(SearchKey(field, "case", key) for field, key in keys),
    )


async def test_alerts_and_their_keys_go_in_together_and_only_once(database_url: str) -> None:
    await migrate(database_url)
    engine = create_engine(database_url, pool_size=4)
    held = HeldConnections(engine, size=1)
    store = SqlSearchStore(engine, held=held)
    try:
        await store.put(
            [
                indexed(1, (FieldKind.PLATE, "01KG123ABC"), (FieldKind.PERSON, "ivanov")),
                indexed(2),  # no keys at all
            ]
        )
        # Again, with another key: an alert indexed already keeps what it has.
        await store.put([indexed(1, (FieldKind.PLATE, "99TJ999ZZ")), indexed(3)])
        await store.put([indexed(4)])  # no alert with a key at all
        assert held.fallbacks == 0
        assert await store.indexed_up_to(NODE, AGENCY) == 4
        found = await store.find(
            NODE, AGENCY, FieldKind.PLATE, frozenset({"01KG123ABC"}), active_risk_at=None, limit=5
        )
        assert found == ["alert-1"]
        assert not await store.find(
            NODE, AGENCY, FieldKind.PLATE, frozenset({"99TJ999ZZ"}), active_risk_at=None, limit=5
        )
        async with engine.connect() as conn:
            keys = (
                await conn.execute(
                    text("SELECT alert_id, field, key FROM search_keys ORDER BY field, key")
                )
            ).all()
        assert [tuple(k) for k in keys] == [
            ("alert-1", "person", "ivanov"),
            ("alert-1", "plate", "01KG123ABC"),
        ]
    finally:
        await held.close()
        await engine.dispose()
