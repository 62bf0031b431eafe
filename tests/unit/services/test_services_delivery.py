"""DeliveryService with fakes: what a partner node stores, receipts and rejects."""

from __future__ import annotations

import copy
import json

from blo_exchange.crypto.envelope import redact
from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from tests.unit.services.fakes import FakeInbox, FakePublisher
from tests.unit.services.world import World

KG, TJ, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-oybek-uz"
SUBJECT = "blo.v1.alerts.KG-TJ.seizure"


async def published_alert(world: World) -> bytes:
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
    await world.ingest(KG).submit(world.terminal(KG), submission, "key-0001")
    return world.publisher.published[-1][1]


async def test_delivers_once_and_receipts_each_time() -> None:
    world = World.demo()
    raw = await published_alert(world)
    inbox, receipts = FakeInbox(), FakePublisher()
    service = world.delivery(TJ, inbox, receipts)

    first = await service.handle(SUBJECT, raw, 1)
    again = await service.handle(SUBJECT, raw, 1)  # a redelivery
    assert (first.status, again.status) == ("delivered", "duplicate")
    assert len(inbox.items) == 1
    # The receipt is re-sent on redelivery, under the same id: the bus drops the copy.
    assert len(receipts.published) == 1
    subject, body, _ = receipts.published[0]
    assert subject == "blo.v1.receipts.KG-TJ"
    receipt = UnverifiedReceipt.parse(body).verify(
        {world.signing[TJ].key_id: world.signing[TJ].verify_key()}
    )
    assert receipt.body["type"] == "alert_delivered"
    assert receipt.body["alert_id"] == first.alert_id


async def test_not_addressed_is_neither_stored_nor_rejected() -> None:
    world = World.demo()
    raw = await published_alert(world)
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = await world.delivery(UZ, inbox, receipts).handle(SUBJECT, raw, 1)
    assert outcome.status == "not_addressed"
    assert inbox.items == {}
    assert inbox.rejections == []
    assert receipts.published == []


async def assert_rejected(world: World, subject: str, raw: bytes, reason: str) -> None:
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = await world.delivery(TJ, inbox, receipts).handle(subject, raw, 7)
    assert (outcome.status, outcome.reason) == ("rejected", reason)
    assert inbox.items == {}
    assert [r.reason for r in inbox.rejections] == [reason]
    if receipts.published:
        body = json.loads(receipts.published[0][1])["receipt"]
        assert body["type"] == "alert_rejected"
        assert body["detail"]["reason"] == reason


async def test_forged_signature_is_rejected() -> None:
    world = World.demo()
    raw = bytearray(await published_alert(world))
    position = raw.index(b'"sig":"') + 20
    raw[position] = ord("A") if raw[position] != ord("A") else ord("B")
    await assert_rejected(world, SUBJECT, bytes(raw), "bad_signature")


async def test_a_key_that_is_not_the_origin_nodes_is_rejected() -> None:
    world = World.demo()
    raw = await published_alert(world)
    world.directory.signing_keys[KG] = {
        world.signing[KG].key_id: SigningKey.generate().verify_key()
    }
    await assert_rejected(world, SUBJECT, raw, "unknown_key")


async def test_revoked_or_unknown_key_is_rejected() -> None:
    world = World.demo()
    raw = await published_alert(world)
    world.directory.signing_keys[KG] = {}
    await assert_rejected(world, SUBJECT, raw, "unknown_key")


async def test_replay_on_another_subject_is_rejected() -> None:
    world = World.demo()
    raw = await published_alert(world)
    await assert_rejected(world, "blo.v1.alerts.KG-TJ.risk", raw, "subject_mismatch")


async def test_garbage_and_bad_subjects_are_rejected() -> None:
    world = World.demo()
    await assert_rejected(world, SUBJECT, b"\xff\xfe not json", "malformed")
    await assert_rejected(world, "blo.v1.alerts.TJ-KG.seizure", b"{}", "bad_subject")


async def test_flipped_bit_is_rejected() -> None:
    world = World.demo()
    raw = bytearray(await published_alert(world))
    position = raw.index(b'"ciphertext":"') + 20
    raw[position] = ord("A") if raw[position] != ord("A") else ord("B")
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = await world.delivery(TJ, inbox, receipts).handle(SUBJECT, bytes(raw), 3)
    assert outcome.status == "rejected"
    assert inbox.items == {}


async def test_redacted_nominal_still_delivers() -> None:
    world = World.demo()
    raw = redact(await published_alert(world), "nominal")
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = await world.delivery(TJ, inbox, receipts).handle(SUBJECT, raw, 4)
    assert outcome.status == "delivered"


async def test_the_origin_skips_only_the_exact_bytes_it_sealed_and_stored() -> None:
    world = World.demo()
    inbox = FakeInbox()
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
    await world.ingest(KG, inbox=inbox).submit(world.terminal(KG), submission, "key-0002")
    raw = world.publisher.published[-1][1]
    receipts = FakePublisher()
    world.directory.signing_keys[KG] = {}  # anything verified now would be rejected
    service = world.delivery(KG, inbox, receipts)

    assert (await service.handle(SUBJECT, raw, 1)).status == "duplicate"
    assert receipts.published == []  # the origin sends no delivered receipt
    assert inbox.rejections == []
    tampered = raw.replace(b'"origin_node"', b'"origin_node" ', 1)
    assert (await service.handle(SUBJECT, tampered, 2)).status == "rejected"


async def test_expired_risk_alert_is_not_delivered() -> None:
    world = World.demo()
    risk = copy.deepcopy(EXAMPLE_RISK)
    risk["case"]["valid_until"] = "2026-11-28T06:00:00Z"  # before the world's clock
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(risk)
    await world.ingest(KG).submit(world.terminal(KG), submission, "key-0002")
    raw = world.publisher.published[-1][1]
    await assert_rejected(world, "blo.v1.alerts.KG-TJ.risk", raw, "expired")

    risk["case"]["valid_until"] = "2026-12-28T06:00:00Z"  # still valid: delivered
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(risk)
    await world.ingest(KG).submit(world.terminal(KG), submission, "key-0003")
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = await world.delivery(TJ, inbox, receipts).handle(
        "blo.v1.alerts.KG-TJ.risk", world.publisher.published[-1][1], 8
    )
    assert outcome.status == "delivered"
