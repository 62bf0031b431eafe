"""Seizure statistics over a fixed set of opened alerts: every total checked by hand, the unit
normalisation, and the CSV export, which holds nothing of the nominal block."""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest

from blo_exchange.domain.directory import Principal, Role
from blo_exchange.services.feed import FeedPage
from blo_exchange.services.seizure_export import COLUMNS, seizures_csv
from blo_exchange.services.statistics import collect, compute, lines_of

NOMINAL: dict[str, Any] = {
    "persons": [
        {
            "role": "driver",
            "name": "Zarina Qodirova-Testname",
            "birth_date": "1981-04-12",
            "nationality": "AF",
            "document": {"type": "passport", "number": "P0099887766", "country": "AF"},
        }
    ],
    "companies": [
        {"name": "Pamir Logistics Fictional LLC", "country": "KZ", "registration": "REG-4455"}
    ],
    "phones": ["+992900123456"],
}


def seizure(
    alert_id: str,
    crossing: str,
    observed_at: str,
    items: list[tuple[str, str, str]],
    *,
    nominal: bool = False,
    **case: Any,
) -> dict[str, Any]:
    alert: dict[str, Any] = {
        "alert_id": alert_id,
        "stream_seq": 1,
        "header": {"kind": "seizure", "crossing_point": crossing, "tlp": "AMBER"},
        "case": {
            "observed_at": observed_at,
            "items": [
                {"substance": s, "form": "powder", "quantity": q, "unit": u} for s, q, u in items
            ],
            "detection_method": "risk_profile",
            **case,
        },
    }
    if nominal:
        alert["nominal"] = NOMINAL
    return alert


ALERTS = [
    seizure("a1", "KG-KARAMYK", "2026-10-03T05:00:00Z", [("heroin", "12.5", "kg")]),
    seizure(
        "a2",
        "KG-KARAMYK",
        "2026-10-20T10:00:00Z",
        [("heroin", "750", "g"), ("hashish", "3", "kg"), ("heroin", "250", "g")],
    ),
    seizure("a3", "TJ-KARAMYK", "2026-11-01T00:00:00Z", [("methamphetamine", "1200", "tablet")]),
    seizure("a4", "TJ-KARAMYK", "2026-11-30T23:59:59Z", [("precursor", "250", "ml")]),
    seizure("a5", "UZ-OYBEK", "2026-11-15T08:00:00Z", [("precursor", "2.5", "l")]),
    {"alert_id": "r1", "stream_seq": 6, "header": {"kind": "risk"}, "case": {"subject": "x"}},
]


def lines() -> list[Any]:
    return [line for alert in ALERTS for line in lines_of(alert)]


def test_every_total() -> None:
    stats = compute(lines())
    assert (stats.seizures, stats.lines) == (5, 7)  # the risk alert counts for nothing

    by_crossing = {k: v.to_json() for k, v in stats.by_crossing_point.items()}
    assert by_crossing == {
        "KG-KARAMYK": {"seizures": 2, "lines": 4, "quantities": {"kg": "16.5"}},
        "TJ-KARAMYK": {"seizures": 2, "lines": 2, "quantities": {"l": "0.25", "tablet": "1200"}},
        "UZ-OYBEK": {"seizures": 1, "lines": 1, "quantities": {"l": "2.5"}},
    }
    by_substance = {k: v.to_json() for k, v in stats.by_substance.items()}
    assert by_substance == {
        "heroin": {"seizures": 2, "lines": 3, "quantities": {"kg": "13.5"}},
        "precursor": {"seizures": 2, "lines": 2, "quantities": {"l": "2.75"}},
        "hashish": {"seizures": 1, "lines": 1, "quantities": {"kg": "3"}},
        "methamphetamine": {"seizures": 1, "lines": 1, "quantities": {"tablet": "1200"}},
    }
    assert list(stats.by_substance) == ["heroin", "precursor", "hashish", "methamphetamine"]
    by_month = {k: v.to_json() for k, v in stats.by_month.items()}
    assert by_month == {
        "2026-10": {"seizures": 2, "lines": 4, "quantities": {"kg": "16.5"}},
        "2026-11": {
            "seizures": 3,
            "lines": 3,
            "quantities": {"l": "2.75", "tablet": "1200"},
        },
    }
    assert stats.to_json()["rows"] == [
        row("KG-KARAMYK", "hashish", "kg", "2026-10", 1, "3"),
        row("KG-KARAMYK", "heroin", "kg", "2026-10", 2, "13.5"),
        row("TJ-KARAMYK", "methamphetamine", "tablet", "2026-11", 1, "1200"),
        row("TJ-KARAMYK", "precursor", "l", "2026-11", 1, "0.25"),
        row("UZ-OYBEK", "precursor", "l", "2026-11", 1, "2.5"),
    ]


def row(crossing: str, substance: str, unit: str, month: str, n: int, q: str) -> dict[str, Any]:
    return {
        "crossing_point": crossing,
        "substance": substance,
        "unit": unit,
        "month": month,
        "seizures": n,
        "quantity": q,
    }


@pytest.mark.parametrize(
    ("quantity", "unit", "amount", "normalised"),
    [
        ("750", "g", Decimal("0.75"), "kg"),
        ("0.000001", "g", Decimal("0.000000001"), "kg"),
        ("2", "kg", Decimal(2), "kg"),
        ("1", "ml", Decimal("0.001"), "l"),
        ("3.5", "l", Decimal("3.5"), "l"),
        ("40", "tablet", Decimal(40), "tablet"),
        ("7", "unit", Decimal(7), "unit"),
    ],
)
def test_units_are_normalised_exactly(
    quantity: str, unit: str, amount: Decimal, normalised: str
) -> None:
    alert = seizure("a", "KG-KARAMYK", "2026-10-03T05:00:00Z", [("opium", quantity, unit)])
    (line,) = lines_of(alert)
    assert (line.amount, line.normalised_unit) == (amount, normalised)


def test_a_unit_from_a_newer_vocabulary_is_added_up_as_it_is() -> None:
    alert = seizure(
        "a",
        "KG-KARAMYK",
        "2026-10-03T05:00:00Z",
        [("opium", "2", "bale"), ("opium", "1", "kg"), ("opium", "3", "bale")],
    )
    total = compute(lines_of(alert)).by_substance["opium"]
    assert total.to_json()["quantities"] == {"kg": "1", "bale": "5"}


def test_nothing_is_an_empty_statistic() -> None:
    stats = compute([])
    assert stats.to_json() == {
        "seizures": 0,
        "lines": 0,
        "by_crossing_point": {},
        "by_substance": {},
        "by_month": {},
        "rows": [],
    }


def keys_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value) | {k for v in value.values() for k in keys_in(v)}
    if isinstance(value, list):
        return {k for v in value for k in keys_in(v)}
    return set()


def values_in(value: Any) -> set[str]:
    if isinstance(value, dict):
        return {s for v in value.values() for s in values_in(v)}
    if isinstance(value, list):
        return {s for v in value for s in values_in(v)}
    return {str(value)}


def test_csv_holds_nothing_of_the_nominal_block() -> None:
    alerts = [
        seizure(
            "n1",
            "KG-KARAMYK",
            "2026-10-03T05:00:00Z",
            [("heroin", "12.5", "kg")],
            nominal=True,
            conveyance={"mode": "road", "vehicle_type": "truck", "identifier": "0417TJ02"},
            concealment={"method": "fuel_tank", "place": "behind the seat of Zarina"},
            narrative={"text": "The driver gave her name as Zarina", "lang": "en"},
            route={"origin": "AF", "transit": ["TJ"], "destination": "RU", "departure": "Kunduz"},
        ),
        seizure("n2", "TJ-KARAMYK", "2026-11-01T00:00:00Z", [("opium", "1", "kg")], nominal=True),
    ]
    text = seizures_csv([line for alert in alerts for line in lines_of(alert)])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 2
    assert tuple(rows[0]) == COLUMNS
    for value in values_in(NOMINAL) - {"AF", "KZ"}:
        # every name, number, date and code of the nominal block; its country codes are also
        # ordinary case values (a route from AF), so they are checked by column below
        assert value not in text, value
    assert "AF" not in (rows[1]["producing_country"], rows[1]["conveyance_registration_country"])
    assert "KZ" not in text
    assert set(COLUMNS).isdisjoint(keys_in(NOMINAL))  # no column named after a nominal field
    for secret in ("0417TJ02", "Zarina", "behind the seat"):
        assert secret not in text  # plate, narrative and free-text place stay out as well
    assert rows[0] == {
        "reference": "n1",
        "tlp": "AMBER",
        "country_of_seizure": "KG",
        "date_of_seizure": "2026-10-03",
        "place_of_seizure": "KG-KARAMYK",
        "drug": "heroin",
        "drug_form": "powder",
        "cas_number": "",
        "amount": "12.5",
        "unit": "kg",
        "amount_normalised": "12.5",
        "unit_normalised": "kg",
        "number_of_packages": "",
        "producing_country": "AF",
        "place_of_departure": "Kunduz",
        "transit_countries": "TJ",
        "destination_country": "RU",
        "mode_of_transport": "road",
        "vehicle_type": "truck",
        "conveyance_registration_country": "",
        "concealment_method": "fuel_tank",
        "detection_method": "risk_profile",
    }


def test_csv_cells_cannot_become_formulas() -> None:
    alert = seizure(
        "f1",
        "KG-KARAMYK",
        "2026-10-03T05:00:00Z",
        [("heroin", "1", "kg")],
        route={"departure": '=HYPERLINK("http://x")'},
    )
    rows = list(csv.DictReader(io.StringIO(seizures_csv(lines_of(alert)))))
    assert rows[0]["place_of_departure"] == '\'=HYPERLINK("http://x")'


class FakeFeed:
    """Pages of 500, as the real feed gives them; the analyst check is the feed's."""

    def __init__(self, alerts: list[dict[str, Any]]) -> None:
        self.alerts = alerts
        self.calls: list[tuple[int, int]] = []

    async def page(self, principal: Principal, *, cursor: int, limit: int) -> FeedPage:
        self.calls.append((cursor, limit))
        items = [a for a in self.alerts if a["stream_seq"] > cursor][:limit]
        return FeedPage(items=items, next_cursor=items[-1]["stream_seq"] if items else cursor)


async def test_collect_reads_every_page() -> None:
    many = [
        seizure(f"p{i}", "KG-KARAMYK", "2026-10-03T05:00:00Z", [("heroin", "1", "g")])
        | {"stream_seq": i}
        for i in range(1, 1203)
    ]
    feed = FakeFeed(many)
    principal = Principal(
        id="tj-analyst",
        role=Role.ANALYST,
        agency_id="tj-drug-control-agency",
        created_at="2026-10-01T00:00:00Z",
    )
    got = await collect(feed, principal)
    assert len(got) == 1202
    assert feed.calls == [(0, 500), (500, 500), (1000, 500)]
    assert compute(got).by_substance["heroin"].quantities == {"kg": Decimal("1.202")}
