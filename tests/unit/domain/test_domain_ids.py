"""Identifiers, border pairs, UUIDv7 alert ids and RFC 3339 time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from blo_exchange.domain.ids import (
    COUNTRIES,
    AgencyId,
    AlertId,
    BorderPair,
    CountryCode,
    CrossingPointId,
    NodeId,
    UtcTimestamp,
    alert_id_time,
    border_pair_of,
    countries_of,
    country_of_crossing_point,
    format_time,
    new_alert_id,
    parse_alert_id,
    parse_border_pair,
    parse_time,
    utc_now,
)

T0 = datetime(2026, 11, 28, 6, 40, tzinfo=UTC)


def fixed_rng(n: int) -> bytes:
    return bytes(range(0xA0, 0xA0 + n))


def test_countries_are_the_249_assigned_codes() -> None:
    assert len(COUNTRIES) == 249
    assert {"KG", "TJ", "UZ", "KZ", "AF", "TM", "CN", "RU"} <= COUNTRIES
    assert not {"XK", "UK", "EU", "XX", "AA"} & COUNTRIES


@pytest.mark.parametrize("pair", ["KG-TJ", "TJ-UZ", "AF-TJ", "KZ-UZ"])
def test_canonical_border_pairs_are_accepted(pair: str) -> None:
    assert parse_border_pair(pair) == pair


def test_unsorted_pair_names_its_canonical_form() -> None:
    with pytest.raises(ValueError, match="'KG-TJ'"):
        parse_border_pair("TJ-KG")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("kg-tj", "did you mean 'KG-TJ'"),
        ("tj-kg", "did you mean 'KG-TJ'"),
        ("KG-KG", "same country twice"),
        ("XX-TJ", "not an assigned"),
        ("KG", "joined by '-'"),
        ("KG-TJ-UZ", "joined by '-'"),
        ("KG_TJ", "joined by '-'"),
        ("KG-TJ ", "joined by '-'"),
        ("", "joined by '-'"),
    ],
)
def test_non_canonical_border_pairs_are_rejected(value: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_border_pair(value)


def test_border_pair_of_sorts_and_countries_of_splits() -> None:
    assert border_pair_of("TJ", "KG") == "KG-TJ"
    assert border_pair_of("KG", "TJ") == "KG-TJ"
    assert countries_of("KG-TJ") == ("KG", "TJ")
    with pytest.raises(ValueError, match="same country"):
        border_pair_of("KG", "KG")
    with pytest.raises(ValueError, match="canonical order"):
        countries_of("TJ-KG")


def test_border_pair_type_is_a_validation_error_in_models() -> None:
    adapter = TypeAdapter(BorderPair)
    assert adapter.validate_python("KG-TJ") == "KG-TJ"
    with pytest.raises(ValidationError, match="'KG-TJ'"):
        adapter.validate_python("TJ-KG")


@pytest.mark.parametrize(
    ("annotation", "good", "bad"),
    [
        (CountryCode, ["KG", "TJ"], ["kg", "XX", "KGZ", "", "UK"]),
        (
            AgencyId,
            ["kg-border-service", "tj-drug-control-agency", "uz-customs2"],
            ["KG-border", "xx-agency", "kg", "kg-", "kg--x", "kg-Border", "k" * 2 + "-" + "a" * 63],
        ),
        (NodeId, ["blo-karamyk-kg", "node1"], ["Blo", "-blo", "blo-", "blo_kg", "a" * 65]),
        (
            CrossingPointId,
            ["KG-KARAMYK", "TJ-FOTEHOBOD", "UZ-OYBEK-2"],
            ["kg-karamyk", "XX-KARAMYK", "KG", "KG-", "KGKARAMYK", "KG-Karamyk"],
        ),
    ],
)
def test_id_types(annotation: Any, good: list[str], bad: list[str]) -> None:
    adapter: TypeAdapter[str] = TypeAdapter(annotation)
    for value in good:
        assert adapter.validate_python(value) == value
    for value in bad:
        with pytest.raises(ValidationError):
            adapter.validate_python(value)


def test_country_of_crossing_point() -> None:
    assert country_of_crossing_point("TJ-FOTEHOBOD") == "TJ"


def test_new_alert_id_is_uuid7_with_time_prefix() -> None:
    alert_id = new_alert_id(T0, rng=fixed_rng)
    parsed = uuid.UUID(alert_id)
    assert str(parsed) == alert_id  # lower-case canonical
    assert parsed.version == 7
    assert parsed.variant == uuid.RFC_4122
    ms = int(T0.timestamp()) * 1000
    assert parsed.int >> 80 == ms
    assert alert_id.replace("-", "")[:12] == f"{ms:012x}"
    assert alert_id_time(alert_id) == T0
    assert parse_alert_id(alert_id) == alert_id


def test_new_alert_id_is_deterministic_for_fixed_inputs() -> None:
    assert new_alert_id(T0, rng=fixed_rng) == new_alert_id(T0, rng=fixed_rng)
    assert new_alert_id(T0) != new_alert_id(T0)  # os.urandom by default


def test_new_alert_id_layout_of_random_bits() -> None:
    value = uuid.UUID(new_alert_id(T0, rng=lambda n: b"\xff" * n)).int
    assert (value >> 76) & 0xF == 7
    assert (value >> 64) & 0xFFF == 0xFFF  # rand_a
    assert (value >> 62) & 0b11 == 0b10  # variant
    assert value & ((1 << 62) - 1) == (1 << 62) - 1  # rand_b


def test_new_alert_id_truncates_to_the_millisecond_and_orders_by_time() -> None:
    a = new_alert_id(T0 + timedelta(microseconds=999), rng=fixed_rng)
    b = new_alert_id(T0 + timedelta(milliseconds=1), rng=fixed_rng)
    assert alert_id_time(a) == T0
    assert a < b


def test_new_alert_id_rejects_naive_time_and_short_rng() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        new_alert_id(datetime(2026, 11, 28, 6, 40), rng=fixed_rng)
    with pytest.raises(ValueError, match="bytes"):
        new_alert_id(T0, rng=lambda n: b"\x00")


@pytest.mark.parametrize(
    "value",
    [
        "019AC95B-6A00-7C3E-9D2B-5F1E0A4C7B21",  # upper case
        "019ac95b-6a00-4c3e-9d2b-5f1e0a4c7b21",  # version 4
        "019ac95b-6a00-7c3e-cd2b-5f1e0a4c7b21",  # wrong variant
        "019ac95b6a007c3e9d2b5f1e0a4c7b21",  # no hyphens
        "{019ac95b-6a00-7c3e-9d2b-5f1e0a4c7b21}",
    ],
)
def test_alert_id_type_rejects_non_canonical_or_non_v7(value: str) -> None:
    with pytest.raises(ValidationError):
        TypeAdapter(AlertId).validate_python(value)


def test_format_time_is_utc_milliseconds_z() -> None:
    assert format_time(T0) == "2026-11-28T06:40:00.000Z"
    dushanbe = timezone(timedelta(hours=5))
    assert format_time(datetime(2026, 11, 28, 11, 40, 0, 123999, dushanbe)) == (
        "2026-11-28T06:40:00.123Z"
    )


def test_format_time_rejects_naive() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        format_time(datetime(2026, 11, 28, 6, 40))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-28T06:40:00Z", T0),
        ("2026-11-28T06:40:00.000Z", T0),
        ("2026-11-28t06:40:00z", T0),
        ("2026-11-28T11:40:00+05:00", T0),
        ("2026-11-28T01:40:00-05:00", T0),
        ("2026-11-28T06:40:00.123456789Z", T0 + timedelta(microseconds=123456)),
    ],
)
def test_parse_time_accepts_rfc3339_with_offset(text: str, expected: datetime) -> None:
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    "text",
    [
        "2026-11-28T06:40:00",  # naive
        "2026-11-28 06:40:00Z",
        "2026-11-28",
        "20261128T064000Z",
        "2026-13-28T06:40:00Z",
        "2026-11-28T06:40:60Z",
        "2026-11-28T06:40:00+24:00",
        "2026-11-28T06:40:00.Z",
        "٢٠٢٦-11-28T06:40:00Z",
    ],
)
def test_parse_time_rejects_everything_else(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - messages differ per case
        parse_time(text)


def test_time_round_trip() -> None:
    now = utc_now()
    assert now.tzinfo is UTC
    text = format_time(now)
    assert format_time(parse_time(text)) == text
    assert parse_time(text) == now.replace(microsecond=now.microsecond // 1000 * 1000)


class _Stamped(BaseModel):
    at: UtcTimestamp


def test_utc_timestamp_normalises_and_serialises() -> None:
    model = _Stamped.model_validate_json('{"at": "2026-11-28T11:40:00+05:00"}')
    assert model.at == T0
    assert model.at.tzinfo is UTC
    assert model.model_dump(mode="json") == {"at": "2026-11-28T06:40:00.000Z"}
    assert _Stamped(at=T0.astimezone(timezone(timedelta(hours=6)))).at.tzinfo is UTC


@pytest.mark.parametrize(
    "payload",
    ['{"at": "2026-11-28T06:40:00"}', '{"at": 1795848000}', '{"at": "yesterday"}'],
)
def test_utc_timestamp_rejects_naive_and_numbers(payload: str) -> None:
    with pytest.raises(ValidationError):
        _Stamped.model_validate_json(payload)


def test_utc_timestamp_rejects_naive_datetime_objects() -> None:
    with pytest.raises(ValidationError, match="timezone-aware"):
        _Stamped(at=datetime(2026, 11, 28, 6, 40))


@pytest.mark.parametrize("text", ["0001-01-01T01:00:00+06:03", "9999-12-31T23:00:00-02:00"])
def test_instants_outside_the_range_in_utc_are_a_value_error(text: str) -> None:
    # Found by schemathesis: these overflowed into a 500 instead of a 422.
    with pytest.raises(ValueError, match="out of range"):
        parse_time(text)
