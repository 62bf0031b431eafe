"""The demo simulator only ever posts alerts the nodes accept under the demo agreements."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from blo_exchange.demo.directory import DEMO_AGREEMENTS, DEMO_NODES
from blo_exchange.demo.simulator import random_alert
from blo_exchange.domain.alerts import parse_alert_submission
from blo_exchange.domain.directory import Node
from blo_exchange.domain.policy import resolve_recipients

NOW = datetime(2026, 11, 29, 9, 0, tzinfo=UTC)


@pytest.mark.parametrize("node", DEMO_NODES, ids=lambda n: n.id)
def test_random_alerts_validate_and_have_recipients(node: Node) -> None:
    rng = random.Random(1)
    for _ in range(50):
        submission = parse_alert_submission(random_alert(node.id, rng, NOW), now=NOW)
        assert submission.border_pair in node.border_pairs
        assert submission.crossing_point in node.crossing_points
        recipients = resolve_recipients(
            DEMO_AGREEMENTS,
            origin_agency=node.agency_id,
            border_pair=submission.border_pair,
            kind=submission.kind,
            tlp=submission.tlp,
            at=NOW,
        )
        assert len(recipients.agencies) == 2
