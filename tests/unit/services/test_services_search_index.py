"""What the index takes from an opened alert, and what counts as a match."""

# ruff: noqa: RUF001
from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest

from blo_exchange.crypto.envelope import OpenedEnvelope
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.transliteration import FieldKind, name_keys
from blo_exchange.errors import Forbidden, PolicyError
from blo_exchange.services.lookout import Lookout
from blo_exchange.services.ports import InboxItem, StoredAlert
from blo_exchange.services.search_index import (
    CASE,
    NOMINAL,
    IndexedAlert,
    SearchIndex,
    SearchKey,
    indexed_alert,
    matches,
)
from tests.unit.services.fakes import FakeDirectory, FakeInbox

NOW = datetime(2026, 12, 5, tzinfo=UTC)
CASE_PART = {
    "subject": "s",
    "indicators": ["i"],
    "targets": [
        {"type": "plate", "value": "01 А 123-ВС"},
        {"type": "route", "value": "Jirgatol - Osh"},
        {"type": "person", "value": "Рахимов"},
    ],
    "valid_until": "2026-12-31T00:00:00.000Z",
}
NOMINAL_PART = {
    "persons": [
        {
            "role": "driver",
            "name": "RAKHIMOV Bakhtiyor",
            "document": {"type": "passport", "number": "AA 123"},
        },
        {"role": "passenger", "name": "Karimov Alisher"},
    ],
    "companies": [{"name": "Pamir Trans LLC", "registration": "REG-7"}],
    "phones": ["+992900000001"],
}


def row() -> InboxItem:
    return InboxItem(
        node_id="n",
        alert_id="a",
        agency_id="tj-drug-control-agency",
        origin_agency="kg",
        origin_node="kg-node",
        border_pair="KG-TJ",
        kind="risk",
        tlp="AMBER",
        created_at=NOW,
        stream_seq=1,
        envelope=b"",
        envelope_sha256="0" * 64,
        feed_seq=7,
    )


def test_keys_come_from_the_case_and_from_a_nominal_part_that_opened() -> None:
    parts = {"case": json.dumps(CASE_PART).encode(), "nominal": json.dumps(NOMINAL_PART).encode()}
    entry = indexed_alert(row(), {"supersedes": "older"}, parts)
    assert SearchKey(FieldKind.PLATE, CASE, "01A123BC") in entry.keys
    assert SearchKey(FieldKind.PERSON, CASE, "rahimov") in entry.keys
    assert SearchKey(FieldKind.PERSON, NOMINAL, "alisher") in entry.keys
    assert SearchKey(FieldKind.DOCUMENT, NOMINAL, "AA123") in entry.keys
    assert SearchKey(FieldKind.DOCUMENT, NOMINAL, "REG7") in entry.keys
    assert SearchKey(FieldKind.COMPANY, NOMINAL, "pamir") in entry.keys
    assert SearchKey(FieldKind.PHONE, NOMINAL, "900000001") in entry.keys
    assert not any("jirgatol" in k.key.lower() for k in entry.keys)  # routes are not searched
    assert (entry.feed_seq, entry.supersedes) == (7, "older")
    assert entry.valid_until == datetime(2026, 12, 31, tzinfo=UTC)


def test_without_the_nominal_part_no_personal_key_is_made() -> None:
    entry = indexed_alert(row(), {}, {"case": json.dumps(CASE_PART).encode()})
    assert {k.source for k in entry.keys} == {CASE}
    assert indexed_alert(row(), None, {}).keys == frozenset()  # did not open: nothing


def test_every_word_of_a_name_must_be_in_the_same_name() -> None:
    assert matches(CASE_PART, NOMINAL_PART, FieldKind.PERSON, name_keys("Рахимов Бахтиёр"))
    # "Rakhimov" is one person's, "Alisher" another's: not one person.
    assert not matches(CASE_PART, NOMINAL_PART, FieldKind.PERSON, frozenset({"rahimov", "alisher"}))
    assert not matches(CASE_PART, None, FieldKind.PERSON, frozenset({"alisher"}))
    assert not matches(CASE_PART, NOMINAL_PART, FieldKind.PERSON, frozenset())
    assert matches(CASE_PART, None, FieldKind.PLATE, frozenset({"01A123BC"}))


def lookout_for(node: Node) -> Lookout:
    inbox = FakeInbox()
    directory = FakeDirectory()
    index = SearchIndex(node=node, kem_keys={}, directory=directory, inbox=inbox, store=None)  # type: ignore[arg-type]
    return Lookout(
        node=node,
        kem_keys={},
        directory=directory,
        inbox=inbox,
        index=index,
        hits=None,  # type: ignore[arg-type]
        clock=lambda: NOW,
    )


def principal(role: Role, node_id: str) -> Principal:
    return Principal(
        id="p",
        role=role,
        node_id=node_id if role is Role.TERMINAL else None,
        agency_id="tj-drug-control-agency",
        label="p",
        created_at=NOW,
    )


def test_a_lookout_happens_at_one_of_the_nodes_crossing_points() -> None:
    one = Node(
        id="blo-karamyk-tj",
        agency_id="tj-drug-control-agency",
        border_pairs=("KG-TJ",),
        crossing_points=("TJ-KARAMYK",),
    )
    two = Node(
        id="blo-two-tj",
        agency_id="tj-drug-control-agency",
        border_pairs=("KG-TJ", "TJ-UZ"),
        crossing_points=("TJ-KARAMYK", "TJ-FOTEHOBOD"),
    )
    assert (
        lookout_for(one).crossing_point(principal(Role.TERMINAL, "blo-karamyk-tj"), None)
        == "TJ-KARAMYK"
    )
    with pytest.raises(PolicyError):  # two crossings: the officer must say which
        lookout_for(two).crossing_point(principal(Role.TERMINAL, "blo-two-tj"), None)
    assert (
        lookout_for(two).crossing_point(principal(Role.TERMINAL, "blo-two-tj"), "TJ-FOTEHOBOD")
        == "TJ-FOTEHOBOD"
    )
    with pytest.raises(PolicyError):
        lookout_for(one).crossing_point(principal(Role.TERMINAL, "blo-karamyk-tj"), "KG-KARAMYK")
    with pytest.raises(Forbidden):  # another node's terminal, or an analyst
        lookout_for(one).crossing_point(principal(Role.TERMINAL, "blo-two-tj"), None)
    with pytest.raises(Forbidden):
        lookout_for(one).crossing_point(principal(Role.ANALYST, "blo-karamyk-tj"), None)


class MemorySearchStore:
    """What the index writes, and the cursor it reads back (the SQL store's two calls used)."""

    def __init__(self) -> None:
        self.alerts: dict[str, IndexedAlert] = {}

    async def indexed_up_to(self, node_id: str, agency_id: str) -> int:
        return max((a.feed_seq for a in self.alerts.values()), default=0)

    async def put(self, alerts: Sequence[IndexedAlert]) -> None:
        for alert in alerts:
            self.alerts.setdefault(alert.alert_id, alert)


TJ_NODE = Node(id="n", agency_id="tj-drug-control-agency", border_pairs=("KG-TJ",))
# Not an envelope: opening it fails, so a key indexed from it came from the hand-over.
SEALED_NOMINAL = b'{"parts":{"nominal":{"ciphertext":"..."}}}'
REDACTED_NOMINAL = b'{"parts":{"nominal":{"redacted":true}}}'


def tj_index(inbox: FakeInbox, store: MemorySearchStore) -> SearchIndex:
    """TJ's index with no key to open anything: what it indexes, it took from a hand-over."""
    return SearchIndex(
        node=TJ_NODE,
        kem_keys={},
        directory=FakeDirectory(),
        inbox=inbox,
        store=store,  # type: ignore[arg-type]
    )


async def stored_row(inbox: FakeInbox, alert_id: str, envelope: bytes) -> InboxItem:
    await inbox.add(dataclasses.replace(row(), alert_id=alert_id, envelope=envelope))
    stored = await inbox.get("n", alert_id)
    assert stored is not None
    return stored


async def test_what_delivery_or_ingest_opened_is_indexed_without_opening_it_again() -> None:
    inbox, store = FakeInbox(), MemorySearchStore()
    index = tj_index(inbox, store)
    parts = {"case": json.dumps(CASE_PART).encode(), "nominal": json.dumps(NOMINAL_PART).encode()}
    delivered = await stored_row(inbox, "delivered", SEALED_NOMINAL)
    await index.stored([StoredAlert(delivered, OpenedEnvelope({}, parts), "key")])
    sealed = await stored_row(inbox, "sealed", SEALED_NOMINAL)
    index.sealed(sealed, {"supersedes": "older"}, parts)
    # Its nominal block redacted in the inbox since (erased, or past its retention on arrival):
    # what was opened before must not bring the personal keys back.
    late = await stored_row(inbox, "late", REDACTED_NOMINAL)
    await index.stored([StoredAlert(late, OpenedEnvelope({}, parts), "key")])
    backfilled = await stored_row(inbox, "backfilled", SEALED_NOMINAL)  # nobody handed it over
    assert store.alerts == {}  # a hand-over writes nothing; the round does

    assert await index.catch_up() == 4
    assert index.opens == 1  # the backfilled row only, which did not open
    # Positions 1 to 3 (delivery's, ingest's own copy, delivery's) went in without a read of
    # the inbox; 4 was read and opened.
    assert index.direct == 3
    keys = {a: {k.source for k in store.alerts[a].keys} for a in store.alerts}
    assert keys == {
        "delivered": {CASE, NOMINAL},
        "sealed": {CASE, NOMINAL},
        "late": {CASE},
        "backfilled": set(),
    }
    assert store.alerts["sealed"].supersedes == "older"
    assert backfilled.feed_seq == 4
    # Another node's or agency's alert is not taken from the hand-over.
    other = dataclasses.replace(delivered, alert_id="other", agency_id="kg-border-service")
    await index.stored([StoredAlert(other, OpenedEnvelope({}, parts), "key")])
    assert not index._ready


async def test_a_hand_over_takes_no_personal_keys_its_row_does_not_hold() -> None:
    """Indexed from the hand-over, the rule of the round holds: a stored row without its
    nominal block (arrived after its retention ended) gives no nominal keys, whatever was
    opened."""
    inbox, store = FakeInbox(), MemorySearchStore()
    index = tj_index(inbox, store)
    parts = {"case": json.dumps(CASE_PART).encode(), "nominal": json.dumps(NOMINAL_PART).encode()}
    late = await stored_row(inbox, "late", REDACTED_NOMINAL)
    kept = await stored_row(inbox, "kept", SEALED_NOMINAL)
    await index.stored(
        [
            StoredAlert(late, OpenedEnvelope({}, parts), "k"),
            StoredAlert(kept, OpenedEnvelope({}, parts), "k"),
        ]
    )
    assert await index.catch_up() == 2
    assert (index.direct, index.opens) == (2, 0)
    assert {a: {k.source for k in store.alerts[a].keys} for a in store.alerts} == {
        "late": {CASE},
        "kept": {CASE, NOMINAL},
    }


async def test_hand_overs_out_of_order_are_indexed_in_position_order() -> None:
    """Two lanes hand over in any order: the round indexes by position, the run after what is
    indexed straight from the hand-over, nothing passed by, nothing opened."""
    inbox, store = FakeInbox(), MemorySearchStore()
    index = tj_index(inbox, store)
    parts = {"case": json.dumps(CASE_PART).encode()}
    first, second, third = [await stored_row(inbox, n, SEALED_NOMINAL) for n in ("a", "b", "c")]
    await index.stored([StoredAlert(third, OpenedEnvelope({}, parts), "k")])
    await index.stored([StoredAlert(first, OpenedEnvelope({}, parts), "k")])
    await index.stored([StoredAlert(second, OpenedEnvelope({}, parts), "k")])
    assert await index.catch_up() == 3
    assert [store.alerts[a].feed_seq for a in ("a", "b", "c")] == [1, 2, 3]
    assert (index.direct, index.opens, index._ready) == (3, 0, {})
    assert await index.catch_up() == 0


async def test_a_long_round_lets_the_loop_run_between_entries_and_puts_a_page_at_a_time() -> None:
    """A round after a busy spell makes hundreds of entries: it yields to the event loop every
    few (accepts and deliveries in flight wait for it otherwise), puts at most a page in one
    statement, and takes in what is handed over meanwhile."""
    inbox, store = FakeInbox(), MemorySearchStore()
    puts: list[int] = []
    put = store.put

    async def counted(alerts: Sequence[IndexedAlert]) -> None:
        puts.append(len(alerts))
        await put(alerts)

    store.put = counted  # type: ignore[method-assign]
    index = tj_index(inbox, store)
    parts = {"case": json.dumps(CASE_PART).encode()}
    rows = [await stored_row(inbox, f"a{n:03d}", SEALED_NOMINAL) for n in range(251)]
    await index.stored([StoredAlert(r, OpenedEnvelope({}, parts), "k") for r in rows[:250]])
    turns = 0

    async def others() -> None:
        nonlocal turns
        while True:
            turns += 1
            if turns == 3:  # the last one arrives while the round runs
                await index.stored([StoredAlert(rows[250], OpenedEnvelope({}, parts), "k")])
            await asyncio.sleep(0)

    other = asyncio.create_task(others())
    await asyncio.sleep(0)
    before = turns
    assert await index.catch_up() == 251
    other.cancel()
    assert turns - before >= 251 // 16  # the loop ran others at least every 16 entries
    assert puts == [200, 51]  # a page, then the rest, the late one with it
    assert (index.direct, index.opens) == (251, 0)
