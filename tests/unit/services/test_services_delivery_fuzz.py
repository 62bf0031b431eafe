"""Hostile envelopes fed to a node's consumer (hypothesis): none crashes it, none reaches the
inbox (and so a feed), every one is recorded as rejected."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from tests.unit.services.fakes import FakeInbox, FakePublisher
from tests.unit.services.world import World

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
SUBJECT = "blo.v1.alerts.KG-TJ.seizure"


def _world_and_envelope() -> tuple[World, bytes]:
    world = World.demo()
    submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
    asyncio.run(world.ingest(KG).submit(world.terminal(KG), submission, "fuzz-key-1"))
    return world, world.publisher.published[-1][1]


WORLD, VALID = _world_and_envelope()
DOCUMENT: dict[str, Any] = json.loads(VALID)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def hostile(draw: st.DrawFn) -> bytes:
    choice = draw(st.integers(0, 4))
    if choice == 0:  # random bytes
        return draw(st.binary(max_size=2000))
    if choice == 1:  # flip bits of the valid envelope
        raw = bytearray(VALID)
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(raw) - 1))
            raw[position] ^= 1 << draw(st.integers(0, 7))
        return bytes(raw)
    if choice == 2:  # replace one field anywhere in the document with a random JSON value
        document = json.loads(VALID)
        node: Any = document
        path = []
        while isinstance(node, dict | list) and node and draw(st.booleans()):
            key = draw(
                st.sampled_from(sorted(node) if isinstance(node, dict) else range(len(node)))
            )
            path.append(key)
            node = node[key]
        if not path:
            return json.dumps(draw(json_values)).encode()
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = draw(json_values)
        return json.dumps(document).encode()
    if choice == 3:  # truncated
        return VALID[: draw(st.integers(0, len(VALID) - 1))]
    # valid JSON, wrong shape
    return json.dumps(draw(json_values)).encode()


subjects = st.sampled_from(
    [SUBJECT, "blo.v1.alerts.KG-TJ.risk", "blo.v1.alerts.TJ-KG.seizure", "blo.v1.alerts.KG-TJ"]
) | st.text(max_size=60)


@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(data=hostile(), subject=subjects)
def test_hostile_messages_never_crash_never_reach_a_feed(data: bytes, subject: str) -> None:
    if data == VALID and subject == SUBJECT:
        return
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = asyncio.run(WORLD.delivery(TJ, inbox, receipts).handle(subject, data, 9))
    assert inbox.items == {}
    if outcome.status == "rejected":
        assert len(inbox.rejections) == 1
        assert inbox.rejections[0].reason == outcome.reason
    else:
        # A well-formed, validly signed envelope not addressed to TJ is the only other way out:
        # nothing to record. Anything else must have been rejected.
        assert outcome.status == "not_addressed", outcome


def test_the_valid_envelope_is_delivered() -> None:
    inbox, receipts = FakeInbox(), FakePublisher()
    outcome = asyncio.run(WORLD.delivery(TJ, inbox, receipts).handle(SUBJECT, VALID, 9))
    assert outcome.status == "delivered"
    assert len(inbox.items) == 1
