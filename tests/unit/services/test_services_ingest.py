"""IngestService with fakes: authorisation, recipients, idempotency, and what is published."""

from __future__ import annotations

import copy
import json
from datetime import timedelta
from typing import Any

import pytest

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time, new_alert_id
from blo_exchange.errors import (
    BusError,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyMismatch,
    NoAgreement,
    PolicyError,
)
from blo_exchange.services.ingest import Submission, request_fingerprint
from tests.unit.services.fakes import FakeIdempotency, FakeInbox
from tests.unit.services.world import NOW, World

KG = "blo-karamyk-kg"


def submission(document: dict[str, Any] = EXAMPLE_SEIZURE) -> Submission:
    return ALERT_SUBMISSION_ADAPTER.validate_python(document)


async def test_publishes_one_signed_envelope_to_the_agreement_parties() -> None:
    world = World.demo()
    inbox = FakeInbox()
    accepted = await world.ingest(KG, inbox=inbox).submit(world.terminal(KG), submission(), "k-1")

    assert accepted.response["recipients"] == ["kg-border-service", "tj-drug-control-agency"]
    [(subject, raw, msg_id)] = world.publisher.published
    assert subject == "blo.v1.alerts.KG-TJ.seizure"
    assert msg_id == accepted.response["alert_id"]
    envelope = UnverifiedEnvelope.parse(raw)
    assert envelope.origin_node == KG  # from the node, never from the body
    assert envelope.header["agreement_ids"] == ["mou-kg-tj-2026"]
    verified = envelope.verify(
        world.directory.signing_keys[KG],
        subject_border_pair="KG-TJ",
        subject_kind="seizure",
        recipient_agency="tj-drug-control-agency",
    )
    tj_key = world.agency_keys["tj-drug-control-agency"]
    opened = verified.open("tj-drug-control-agency", {tj_key.key_id: tj_key})
    assert json.loads(opened.parts["nominal"])["persons"][0]["name"] == "Example Driver"
    assert (KG, accepted.response["alert_id"]) in inbox.items  # the origin can read it back


async def test_nominal_block_only_goes_where_an_agreement_allows_it() -> None:
    world = World.demo()
    document = copy.deepcopy(EXAMPLE_SEIZURE)
    document.update(border_pair="TJ-UZ", crossing_point="TJ-FOTEHOBOD")
    await world.ingest("blo-fotehobod-tj").submit(
        world.terminal("blo-fotehobod-tj"), submission(document), "k-2"
    )
    verified = UnverifiedEnvelope.parse(world.publisher.published[0][1]).verify_signature_only(
        world.directory.signing_keys["blo-fotehobod-tj"],
        subject_border_pair="TJ-UZ",
        subject_kind="seizure",
    )
    assert verified.recipient_parts("uz-customs-committee") == ("case",)
    assert verified.recipient_parts("tj-drug-control-agency") == ("case", "nominal")


async def test_replay_returns_the_first_answer_and_publishes_nothing_more() -> None:
    world = World.demo()
    service = world.ingest(KG)
    first = await service.submit(world.terminal(KG), submission(), "k-3")
    again = await service.submit(world.terminal(KG), submission(), "k-3")
    assert again.replayed
    assert again.response == first.response
    assert len(world.publisher.published) == 1


async def test_same_key_with_another_body_is_refused() -> None:
    world = World.demo()
    service = world.ingest(KG)
    await service.submit(world.terminal(KG), submission(), "k-4")
    with pytest.raises(IdempotencyMismatch):
        await service.submit(world.terminal(KG), submission(EXAMPLE_RISK), "k-4")


async def test_concurrent_duplicate_is_in_progress_and_a_stale_one_is_taken_over() -> None:
    world = World.demo()
    idempotency = FakeIdempotency()
    first_id = new_alert_id(NOW)
    await idempotency.begin("terminal-blo-karamyk-kg", "k-5", "x", first_id, stale_after=30)
    service = world.ingest(KG, idempotency=idempotency)
    sha_row = idempotency.rows[("terminal-blo-karamyk-kg", "k-5")]
    sha_row["sha"] = request_fingerprint(submission())
    with pytest.raises(IdempotencyInProgress):
        await service.submit(world.terminal(KG), submission(), "k-5")
    sha_row["age"] = 60.0  # the first attempt's node died half a minute ago
    taken = await service.submit(world.terminal(KG), submission(), "k-5")
    assert taken.response["alert_id"] == first_id


async def test_a_retry_of_an_alert_already_in_the_stream_answers_with_its_created_at() -> None:
    # The first attempt published, then its node died before storing and answering. The retry,
    # 45 s later, takes the key over: the stream has the alert already, and the answer is the
    # original one — the same alert, sequence and created_at, marked as a replay.
    world = World.demo()
    idempotency = FakeIdempotency()
    crashing = FakeInbox()

    async def crash(item: object, *, completes: object = None) -> bool:
        raise ConnectionResetError("the node died here")

    crashing.add = crash  # type: ignore[method-assign]
    first = world.ingest(KG, idempotency=idempotency, inbox=crashing)
    with pytest.raises(ConnectionResetError):
        await first.submit(world.terminal(KG), submission(), "k-7")
    (row,) = idempotency.rows.values()
    row["age"] = 45.0
    later = world.ingest(KG, idempotency=idempotency, now=lambda: NOW + timedelta(seconds=45))
    retried = await later.submit(world.terminal(KG), submission(), "k-7")
    assert retried.replayed
    assert len(world.publisher.published) == 1
    published = UnverifiedEnvelope.parse(world.publisher.published[0][1])
    assert retried.response["created_at"] == published.header["created_at"] == format_time(NOW)
    assert retried.response["alert_id"] == row["alert_id"]
    assert retried.response["stream_seq"] == 1
    # And a third request with the key gets exactly that answer.
    third = await later.submit(world.terminal(KG), submission(), "k-7")
    assert third.replayed
    assert third.response == retried.response


async def test_bus_failure_frees_the_key_for_a_retry_with_the_same_alert_id() -> None:
    world = World.demo()
    idempotency = FakeIdempotency()
    service = world.ingest(KG, idempotency=idempotency)
    world.publisher.fail = True
    with pytest.raises(BusError):
        await service.submit(world.terminal(KG), submission(), "k-6")
    (first,) = [row["alert_id"] for row in idempotency.rows.values()]
    world.publisher.fail = False
    accepted = await service.submit(world.terminal(KG), submission(), "k-6")
    assert not accepted.replayed
    assert len(world.publisher.published) == 1
    # A publish whose ack was lost may be in the stream: the retry must carry the same
    # Nats-Msg-Id, or one request would become two alerts.
    assert accepted.response["alert_id"] == first


async def test_no_agreement_publishes_nothing() -> None:
    world = World.demo()
    red = copy.deepcopy(EXAMPLE_SEIZURE)
    red["tlp"] = "RED"
    with pytest.raises(NoAgreement):
        await world.ingest(KG).submit(world.terminal(KG), submission(red), "k-7")
    world.directory.agreement_list = []
    with pytest.raises(NoAgreement):
        await world.ingest(KG).submit(world.terminal(KG), submission(), "k-8")
    assert world.publisher.published == []


async def test_only_this_nodes_terminals_and_pairs() -> None:
    world = World.demo()
    service = world.ingest(KG)
    with pytest.raises(Forbidden):
        await service.submit(world.terminal("blo-karamyk-tj"), submission(), "k-9")
    other_pair = copy.deepcopy(EXAMPLE_SEIZURE)
    other_pair.update(border_pair="TJ-UZ", crossing_point="TJ-FOTEHOBOD")
    with pytest.raises(Forbidden):
        await service.submit(world.terminal(KG), submission(other_pair), "k-10")
    other_point = copy.deepcopy(EXAMPLE_SEIZURE)
    other_point["crossing_point"] = "TJ-KARAMYK"
    with pytest.raises(PolicyError):
        await service.submit(world.terminal(KG), submission(other_point), "k-11")
    assert world.publisher.published == []


async def test_missing_recipient_key_refuses() -> None:
    world = World.demo()
    del world.directory.kem_keys["tj-drug-control-agency"]
    with pytest.raises(PolicyError, match=r"no .* key"):
        await world.ingest(KG).submit(world.terminal(KG), submission(), "k-12")
    assert world.publisher.published == []
