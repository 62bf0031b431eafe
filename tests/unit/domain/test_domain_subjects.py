"""Alert subjects of both lanes: the lane is a suffix the parser accepts and nothing else."""

from __future__ import annotations

import pytest

from blo_exchange.domain.subjects import (
    alert_subject,
    alert_subjects_for_pairs,
    parse_alert_subject,
)


def test_both_lanes_name_the_same_pair_and_kind() -> None:
    assert alert_subject("KG-TJ", "seizure") == "blo.v1.alerts.KG-TJ.seizure"
    assert alert_subject("KG-TJ", "risk", bulk=True) == "blo.v1.alerts.KG-TJ.risk.bulk"
    assert parse_alert_subject("blo.v1.alerts.KG-TJ.risk.bulk") == ("KG-TJ", "risk")
    assert parse_alert_subject("blo.v1.alerts.KG-TJ.risk") == ("KG-TJ", "risk")


def test_each_lane_has_its_own_filters() -> None:
    assert alert_subjects_for_pairs(["TJ-UZ", "KG-TJ"]) == [
        "blo.v1.alerts.KG-TJ.*",
        "blo.v1.alerts.TJ-UZ.*",
    ]
    assert alert_subjects_for_pairs(["KG-TJ"], bulk=True) == ["blo.v1.alerts.KG-TJ.*.bulk"]


@pytest.mark.parametrize(
    "subject",
    [
        "blo.v1.alerts.KG-TJ.risk.slow",
        "blo.v1.alerts.KG-TJ.risk.bulk.bulk",
        "blo.v1.alerts.KG-TJ.bulk",
        "blo.v1.alerts.KG-TJ.bulk.risk",
    ],
)
def test_anything_else_is_no_alert_subject(subject: str) -> None:
    with pytest.raises(ValueError, match=r"subject|bulk"):
        parse_alert_subject(subject)
