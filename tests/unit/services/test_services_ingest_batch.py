"""``IngestService.submit_batch`` with fakes: a ``:batch`` post's items get what ``submit`` would
give each, one after another, while their keys are claimed, their envelopes published and their
own copies stored with their answers a chunk at a time (issue 14)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.errors import (
    BusError,
    Forbidden,
    IdempotencyInProgress,
    IdempotencyMismatch,
    NoAgreement,
)
from blo_exchange.services.ingest import (
    BATCH_CHUNK,
    Accepted,
    Submission,
    request_fingerprint,
)
from tests.unit.services.fakes import FakeAck, FakeIdempotency, FakeInbox, FakePublisher
from tests.unit.services.world import World

KG = "blo-karamyk-kg"
TERMINAL = f"terminal-{KG}"


def submission(document: dict[str, Any] = EXAMPLE_SEIZURE) -> Submission:
    return ALERT_SUBMISSION_ADAPTER.validate_python(document)


def accepted(answer: object) -> Accepted:
    assert isinstance(answer, Accepted), answer
    return answer


async def test_a_batch_is_claimed_published_and_stored_a_chunk_at_a_time() -> None:
    world = World.demo()
    idempotency, inbox = FakeIdempotency(), FakeInbox()
    service = world.ingest(KG, idempotency=idempotency, inbox=inbox)
    count = 2 * BATCH_CHUNK + 20
    items = [
        (submission(EXAMPLE_SEIZURE if n % 2 else EXAMPLE_RISK), f"key-{n:04d}")
        for n in range(count)
    ]

    answers = [accepted(a) for a in await service.submit_batch(world.terminal(KG), items)]

    assert idempotency.claims == [BATCH_CHUNK, BATCH_CHUNK, 20]  # one claim per chunk
    assert inbox.batches == [BATCH_CHUNK, BATCH_CHUNK, 20]  # one store per chunk
    assert not any(a.replayed for a in answers)
    assert len({a.response["alert_id"] for a in answers}) == count
    assert len(world.publisher.published) == count
    for (subject, raw, msg_id), answer in zip(
        sorted(world.publisher.published, key=lambda p: p[2]),
        sorted(answers, key=lambda a: a.response["alert_id"]),
        strict=True,
    ):
        alert_id = answer.response["alert_id"]
        assert msg_id == alert_id
        assert subject == f"blo.v1.alerts.KG-TJ.{answer.response['kind']}.bulk"  # the bulk lane
        UnverifiedEnvelope.parse(raw).verify_signature_only(
            world.directory.signing_keys[KG],
            subject_border_pair="KG-TJ",
            subject_kind=answer.response["kind"],
        )
        assert (KG, alert_id) in inbox.items  # the origin's own copy
    # Each key is done with its item's answer, in the items' order (recorded with the copies).
    for (_, key), answer in zip(items, answers, strict=True):
        row = idempotency.rows[(TERMINAL, key)]
        assert row["state"] == "done"
        assert row["response"] == answer.response
    assert service.accepted == count


async def test_items_sharing_a_key_get_what_one_after_another_would() -> None:
    world = World.demo()
    idempotency = FakeIdempotency()
    service = world.ingest(KG, idempotency=idempotency)
    terminal = world.terminal(KG)
    before = accepted(await service.submit(terminal, submission(), "seen-before"))
    # A key another request holds right now (pending, not stale).
    fingerprint = request_fingerprint(submission())
    await idempotency.begin(TERMINAL, "in-flight", fingerprint, "x", stale_after=30)
    items = [
        (submission(), "k-a"),
        (submission(EXAMPLE_RISK), "k-b"),
        (submission(), "k-a"),  # the same body: the first's answer
        (submission(EXAMPLE_RISK), "k-a"),  # another body
        (submission(), "seen-before"),
        (submission(EXAMPLE_RISK), "seen-before"),
        (submission(), "in-flight"),
    ]

    answers = await service.submit_batch(terminal, items)

    first, second, again = accepted(answers[0]), accepted(answers[1]), accepted(answers[2])
    assert not first.replayed
    assert not second.replayed
    assert again.replayed
    assert again.response == first.response
    assert isinstance(answers[3], IdempotencyMismatch)
    replay = accepted(answers[4])
    assert replay.replayed
    assert replay.response == before.response
    assert isinstance(answers[5], IdempotencyMismatch)
    assert isinstance(answers[6], IdempotencyInProgress)
    assert len(world.publisher.published) == 3  # "seen-before" once, then k-a and k-b


async def test_a_refused_item_refuses_only_itself_and_leaves_its_key_free() -> None:
    world = World.demo()
    idempotency = FakeIdempotency()
    service = world.ingest(KG, idempotency=idempotency)
    other_pair = copy.deepcopy(EXAMPLE_SEIZURE)
    other_pair.update(border_pair="TJ-UZ", crossing_point="TJ-FOTEHOBOD")
    red = copy.deepcopy(EXAMPLE_RISK)
    red["tlp"] = "RED"  # no agreement shares it
    items = [
        (submission(), "k-1"),
        (submission(other_pair), "k-2"),
        (submission(red), "k-3"),
        (submission(EXAMPLE_RISK), "k-4"),
    ]

    answers = await service.submit_batch(world.terminal(KG), items)

    assert isinstance(answers[1], Forbidden)
    assert isinstance(answers[2], NoAgreement)
    accepted(answers[0])
    accepted(answers[3])
    assert set(idempotency.rows) == {(TERMINAL, "k-1"), (TERMINAL, "k-4")}
    assert len(world.publisher.published) == 2


class FailingOnce(FakePublisher):
    """Loses the JetStream ack of its ``fail_at``-th publish (counted from 1)."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.calls = 0
        self.fail_at = fail_at

    async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> FakeAck:
        self.calls += 1
        if self.calls == self.fail_at:
            raise BusError("no JetStream ack")
        return await super().publish(subject, payload, msg_id=msg_id)


async def test_a_lost_ack_fails_its_item_alone_and_frees_its_key_for_the_same_alert_id() -> None:
    world = World.demo()
    world.publisher = FailingOnce(fail_at=2)
    idempotency, inbox = FakeIdempotency(), FakeInbox()
    service = world.ingest(KG, idempotency=idempotency, inbox=inbox)
    items = [(submission(), f"k-{n}") for n in range(4)]

    answers = await service.submit_batch(world.terminal(KG), items)

    failed = [i for i, a in enumerate(answers) if isinstance(a, BusError)]
    assert len(failed) == 1
    (key,) = [items[i][1] for i in failed]
    row = idempotency.rows[(TERMINAL, key)]
    assert row["state"] == "pending"
    assert row["age"] == float("inf")
    assert inbox.batches == [3]  # the other three stored, with their answers
    retried = accepted((await service.submit_batch(world.terminal(KG), [items[failed[0]]]))[0])
    assert retried.response["alert_id"] == row["alert_id"]  # Nats-Msg-Id dedupes a lost ack


async def test_a_store_that_fails_leaves_the_keys_pending_and_a_retry_replays_the_stream() -> None:
    # The chunk was published, then the database went away before its copies and answers were
    # stored: the request fails, and the same batch retried later (its keys stale) takes each
    # key over with its alert id; the stream has every envelope already, so nothing is
    # published twice and every answer is the stream's.
    world = World.demo()
    idempotency, inbox = FakeIdempotency(), FakeInbox(fail_batches=1)
    service = world.ingest(KG, idempotency=idempotency, inbox=inbox)
    items = [(submission(), f"k-{n}") for n in range(5)]

    with pytest.raises(OSError, match="went away"):
        await service.submit_batch(world.terminal(KG), items)
    assert {row["state"] for row in idempotency.rows.values()} == {"pending"}
    published = {msg_id: seq for seq, (_, _, msg_id) in enumerate(world.publisher.published, 1)}
    assert len(published) == 5
    for row in idempotency.rows.values():
        row["age"] = 60.0  # the first attempt is stale

    answers = [accepted(a) for a in await service.submit_batch(world.terminal(KG), items)]

    assert len(world.publisher.published) == 5
    assert all(a.replayed for a in answers)
    for (_, key), answer in zip(items, answers, strict=True):
        row = idempotency.rows[(TERMINAL, key)]
        assert answer.response["alert_id"] == row["alert_id"]
        assert answer.response["stream_seq"] == published[row["alert_id"]]
        assert row["state"] == "done"
