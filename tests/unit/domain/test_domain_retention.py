"""How long a recipient keeps a nominal block, and who may extend it (domain.retention), and the
retention fields of an agreement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError

from blo_exchange.demo.directory import DEMO_AGREEMENTS
from blo_exchange.domain.directory import DEFAULT_NOMINAL_RETENTION_DAYS, Agreement
from blo_exchange.domain.retention import (
    check_extension,
    expiry_day,
    governing_retention,
    stream_outlives_retention,
)

KG_TJ, TJ_UZ = DEMO_AGREEMENTS
CREATED = datetime(2026, 12, 5, 14, 30, tzinfo=UTC)


def agreement(**changes: object) -> Agreement:
    terms = KG_TJ.model_dump(mode="json") | changes
    return Agreement.model_validate(terms)


def test_expiry_rounds_down_to_midnight_utc() -> None:
    assert expiry_day(CREATED, 30) == datetime(2027, 1, 4, tzinfo=UTC)
    with pytest.raises(ValueError, match="aware"):
        expiry_day(CREATED.replace(tzinfo=None), 30)


def test_the_strictest_cited_nominal_agreement_governs() -> None:
    longer = agreement(id="mou-long", nominal_retention_days=60, nominal_retention_max_days=60)
    retention = governing_retention([longer, KG_TJ, TJ_UZ], ["mou-long", KG_TJ.id], CREATED)
    assert retention is not None
    assert retention.agreement_id == KG_TJ.id
    assert retention.expires_at == expiry_day(CREATED, 30)
    assert retention.max_until == expiry_day(CREATED, 90)
    # A non-nominal agreement, or one not cited, governs nothing.
    assert governing_retention([KG_TJ, TJ_UZ], [TJ_UZ.id], CREATED) is None
    assert governing_retention([longer], [KG_TJ.id], CREATED) is None


def test_an_old_nominal_agreement_keeps_for_the_default_and_serialises_as_before() -> None:
    old = agreement(nominal_retention_days=None, nominal_retention_max_days=None)
    assert old.retention_days == old.retention_max_days == DEFAULT_NOMINAL_RETENTION_DAYS
    assert "nominal_retention_days" not in old.model_dump(mode="json")
    assert KG_TJ.model_dump(mode="json")["nominal_retention_max_days"] == 90


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"nominal": False}, "only a nominal agreement"),
        ({"nominal_retention_max_days": 10}, "at least nominal_retention_days"),
        ({"nominal_retention_days": 0}, "greater than or equal to 1"),
        ({"nominal_retention_days": "30"}, "valid integer"),
    ],
)
def test_retention_terms_are_checked(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        agreement(**changes)


@pytest.mark.parametrize(
    ("requester", "until_days", "reason", "refused"),
    [
        ("kg-border-service", 60, "court case", None),
        ("kg-border-service", 90, "court case", None),
        ("tj-drug-control-agency", 60, "court case", "not_originator"),
        ("kg-border-service", 91, "court case", "beyond_maximum"),
        ("kg-border-service", 30, "court case", "not_later"),
        ("kg-border-service", 60, "  ", "reason_required"),
        ("kg-border-service", 60, "x" * 501, "reason_required"),
    ],
)
def test_only_the_originator_extends_within_the_maximum(
    requester: str, until_days: int, reason: str, refused: str | None
) -> None:
    retention = governing_retention([KG_TJ], [KG_TJ.id], CREATED)
    assert retention is not None
    assert (
        check_extension(
            requester_agency=requester,
            origin_agency="kg-border-service",
            current=retention.expires_at,
            until=expiry_day(CREATED, until_days),
            max_until=retention.max_until,
            reason=reason,
        )
        == refused
    )


def test_a_stream_kept_longer_than_the_retention_is_named() -> None:
    tj = "tj-drug-control-agency"
    assert stream_outlives_retention(None, DEMO_AGREEMENTS, tj)
    assert stream_outlives_retention(timedelta(days=31), DEMO_AGREEMENTS, tj)
    assert not stream_outlives_retention(timedelta(days=30), DEMO_AGREEMENTS, tj)
    # UZ shares no personal data: nothing to outlive.
    assert not stream_outlives_retention(None, DEMO_AGREEMENTS, "uz-customs-committee")
