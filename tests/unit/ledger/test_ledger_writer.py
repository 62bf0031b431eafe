"""The ledger writer with fakes: directory changes and auditors' queries become entries once."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from tests.unit.services.fakes import FakeLedgerStore, FakePublisher
from tests.unit.services.world import NOW, World, clock

from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.receipt import record_message_id, sign_receipt
from blo_exchange.demo.directory import DEMO_AGREEMENTS
from blo_exchange.domain.subjects import LEDGER_QUERIES_SUBJECT
from blo_exchange.errors import QueryTooLong
from blo_exchange.ledger.audit import MAX_QUERY_CHARS, LedgerQueryRecorder
from blo_exchange.ledger.entries import DirectoryState, KeyRecord
from blo_exchange.ledger.writer import InboundMessage, LedgerWriter

KG = "blo-karamyk-kg"


def key(key_id: str, *, revoked_after: timedelta | None = None) -> KeyRecord:
    return KeyRecord(
        key_id=key_id,
        owner_kind="node",
        owner_id=KG,
        owner_agency="kg-border-service",
        alg="Ed25519",
        public=b"\x01" * 32,
        created_at=NOW - timedelta(days=1),
        revoked_at=None if revoked_after is None else NOW + revoked_after,
    )


def fields(store: FakeLedgerStore) -> list[dict[str, Any]]:
    return [json.loads(e.leaf_input) for e in store.entries]


async def test_directory_changes_are_recorded_once() -> None:
    store = FakeLedgerStore()
    writer = LedgerWriter(directory=World.demo().directory, store=store, clock=clock)
    state = DirectoryState(
        keys=(key("k-live"), key("k-revoked", revoked_after=-timedelta(minutes=5))),
        agreements=tuple(DEMO_AGREEMENTS[:1]),
    )
    assert len(await writer.record_directory(state)) == 4
    assert await writer.record_directory(state) == []
    # A writer that remembers nothing (a restart) finds them in the ledger.
    again = LedgerWriter(directory=World.demo().directory, store=store, clock=clock)
    assert await again.record_directory(state) == []

    by_type = {str(f["type"]) + ":" + str(f["detail"].get("key_id", "")): f for f in fields(store)}
    registered = by_type["key_registered:k-live"]
    assert registered["actor_node"] == KG
    assert registered["actor_agency"] == "kg-border-service"
    assert set(registered["detail"]) == {
        "key_id",
        "owner_kind",
        "owner_id",
        "alg",
        "public_sha256",
    }
    revoked = by_type["key_revoked:k-revoked"]
    assert revoked["occurred_at"] == "2026-11-28T06:40:00.000Z"
    assert revoked["detail"]["revoked_at"] == "2026-11-28T06:40:00.000Z"
    changed = by_type["agreement_changed:"]
    assert changed["agreement_ids"] == ["mou-kg-tj-2026"]
    assert changed["recipients"] == ["kg-border-service", "tj-drug-control-agency"]
    assert changed["detail"]["max_tlp"] == "AMBER+STRICT"


async def test_a_changed_agreement_is_a_new_entry_and_a_scheduled_revocation_waits() -> None:
    store = FakeLedgerStore()
    now = [NOW]
    writer = LedgerWriter(directory=World.demo().directory, store=store, clock=lambda: now[0])
    agreement = DEMO_AGREEMENTS[0]
    scheduled = key("k-old", revoked_after=timedelta(hours=1))
    await writer.record_directory(DirectoryState(keys=(scheduled,), agreements=(agreement,)))
    assert [f["type"] for f in fields(store)] == ["key_registered", "agreement_changed"]

    amended = agreement.model_copy(update={"title": agreement.title + " (amended)"})
    await writer.record_directory(DirectoryState(keys=(scheduled,), agreements=(amended,)))
    now[0] = NOW + timedelta(hours=2)
    await writer.record_directory(DirectoryState(keys=(scheduled,), agreements=(amended,)))
    types = [f["type"] for f in fields(store)]
    assert types == ["key_registered", "agreement_changed", "agreement_changed", "key_revoked"]
    ids = [e.event_id for e in store.entries]
    assert ids[1] != ids[2]
    assert ids[1].startswith("agreement_changed:mou-kg-tj-2026:")


async def test_query_records_become_ledger_queried_once_and_forgeries_are_rejected() -> None:
    world = World.demo()
    node = world.node(KG)
    publisher = FakePublisher()
    recorder = LedgerQueryRecorder(
        node=node, signer=world.signing[KG], publisher=publisher, clock=clock
    )
    # Padding before the real filter used to push it out of a record cut at 500 characters.
    padded = "pad=" + "x" * 600 + "&alert_id=019ac9a1-5b00-7c3e-8a4f-2d1e0b9c7a61&type=alert_shared"
    body = await recorder.record(principal_id="auditor-1", path="/v1/ledger/entries", query=padded)
    assert body["filters"] == {
        "alert_id": ["019ac9a1-5b00-7c3e-8a4f-2d1e0b9c7a61"],
        "pad": ["x" * 600],
        "type": ["alert_shared"],
    }
    ((subject, raw, msg_id),) = publisher.published
    assert subject == LEDGER_QUERIES_SUBJECT
    assert msg_id == record_message_id(body["receipt_id"], world.signing[KG])

    store = FakeLedgerStore()
    writer = LedgerWriter(directory=world.directory, store=store, clock=clock)
    message = InboundMessage(subject, raw, 1)
    assert len(await writer.handle([message, message])) == 1
    assert await writer.handle([InboundMessage(subject, raw, 2)]) == []  # redelivered
    (entry,) = fields(store)
    assert entry["type"] == "ledger_queried"
    assert entry["actor_node"] == KG
    assert entry["actor_agency"] == "kg-border-service"
    assert entry["detail"] == {
        "receipt_id": body["receipt_id"],
        "principal": "auditor-1",
        "path": "/v1/ledger/entries",
        "filters": body["filters"],
    }
    assert store.entries[0].event_id == f"receipt:{body['node']}:{body['receipt_id']}"

    forged = sign_receipt(body | {"receipt_id": "forged"}, SigningKey.generate())
    not_a_query = sign_receipt(body | {"type": "alert_delivered"}, world.signing[KG])
    await writer.handle(
        [InboundMessage(subject, forged, 3), InboundMessage(subject, not_a_query, 4)]
    )
    rejected = fields(store)[1:]
    assert [r["type"] for r in rejected] == ["alert_rejected", "alert_rejected"]
    assert [r["detail"]["reason"] for r in rejected] == ["unknown_key", "malformed_query"]


async def test_an_over_long_query_is_refused_and_recorded_as_refused() -> None:
    world = World.demo()
    publisher = FakePublisher()
    recorder = LedgerQueryRecorder(
        node=world.node(KG), signer=world.signing[KG], publisher=publisher, clock=clock
    )
    query = "alert_id=x&pad=" + "y" * MAX_QUERY_CHARS
    with pytest.raises(QueryTooLong):
        await recorder.record(principal_id="auditor-1", path="/v1/ledger/entries", query=query)
    ((subject, raw, _),) = publisher.published
    store = FakeLedgerStore()
    writer = LedgerWriter(directory=world.directory, store=store, clock=clock)
    await writer.handle([InboundMessage(subject, raw, 1)])
    (entry,) = fields(store)
    assert entry["type"] == "ledger_queried"
    assert entry["detail"]["filters"] == {}
    assert entry["detail"]["refused"]["reason"] == "query_too_long"
    assert entry["detail"]["refused"]["query_chars"] == len(query)
