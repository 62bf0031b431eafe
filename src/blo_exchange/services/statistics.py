"""Seizure statistics of one agency: how many seizures, and how much, by crossing point,
substance, unit and month, over the alerts that agency may read.

The input is what the feed service opens for an analyst (its inbox, verified and decrypted);
only the header and the case part are read, never the nominal part. Quantities are added up as
decimals, never floats, in normalised units: grams as kilograms, millilitres as litres; tablets
and units stay counts, each on its own.

A *seizure* is one seizure alert; a *line* is one item of it (one substance). A group (a
crossing point, a substance, a month) counts each alert once however many of its items fall in
the group, and adds the quantities of those items.

Not here: drawing (``web``), the CSV export (``seizure_export``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Final, Protocol

from blo_exchange.domain.directory import Principal
from blo_exchange.services.feed import FeedPage

__all__ = [
    "NORMALISED_UNITS",
    "FeedReader",
    "Line",
    "Statistics",
    "Total",
    "collect",
    "compute",
    "lines_of",
    "plain",
]

NORMALISED_UNITS: Final[Mapping[str, tuple[str, Decimal]]] = {
    "g": ("kg", Decimal("0.001")),
    "kg": ("kg", Decimal(1)),
    "ml": ("l", Decimal("0.001")),
    "l": ("l", Decimal(1)),
    "tablet": ("tablet", Decimal(1)),
    "unit": ("unit", Decimal(1)),
}
"""Reported unit → (normalised unit, factor)."""

_UNIT_ORDER: Final = ("kg", "l", "tablet", "unit")
_PAGE: Final = 500


def plain(value: Decimal) -> str:
    """A decimal as plain text without trailing zeros or exponent: ``12.500`` → ``"12.5"``."""
    return format(value.normalize(), "f")


@dataclass(frozen=True)
class Line:
    """One item of one seizure alert, with the non-nominal facts about it."""

    alert_id: str
    tlp: str
    crossing_point: str
    country: str
    observed_at: str
    month: str
    substance: str
    form: str
    cas_number: str | None
    quantity: str
    unit: str
    amount: Decimal
    """``quantity`` in ``normalised_unit``"""
    normalised_unit: str
    package_count: int | None
    detection_method: str
    concealment_method: str | None
    conveyance_mode: str | None
    vehicle_type: str | None
    registration_country: str | None
    origin: str | None
    departure: str | None
    transit: tuple[str, ...]
    destination: str | None


def lines_of(alert: Mapping[str, Any]) -> list[Line]:
    """The lines of one opened alert; none if it is not a seizure. Reads ``header`` and ``case``
    only: an alert's ``nominal`` part is never looked at."""
    header: Mapping[str, Any] = alert["header"]
    if header.get("kind") != "seizure":
        return []
    case: Mapping[str, Any] = alert["case"]
    observed = str(case["observed_at"])
    conveyance: Mapping[str, Any] = case.get("conveyance") or {}
    route: Mapping[str, Any] = case.get("route") or {}
    concealment: Mapping[str, Any] = case.get("concealment") or {}
    crossing = str(header["crossing_point"])
    lines = []
    for item in case["items"]:
        # A unit this version does not know (a newer sender's vocabulary) is added up as is.
        normalised, factor = NORMALISED_UNITS.get(item["unit"], (str(item["unit"]), Decimal(1)))
        lines.append(
            Line(
                alert_id=str(alert["alert_id"]),
                tlp=str(header["tlp"]),
                crossing_point=crossing,
                country=crossing[:2],
                observed_at=observed,
                month=observed[:7],
                substance=str(item["substance"]),
                form=str(item["form"]),
                cas_number=item.get("cas_number"),
                quantity=str(item["quantity"]),
                unit=str(item["unit"]),
                amount=Decimal(item["quantity"]) * factor,
                normalised_unit=normalised,
                package_count=item.get("package_count"),
                detection_method=str(case["detection_method"]),
                concealment_method=concealment.get("method"),
                conveyance_mode=conveyance.get("mode"),
                vehicle_type=conveyance.get("vehicle_type"),
                registration_country=conveyance.get("registration_country"),
                origin=route.get("origin"),
                departure=route.get("departure"),
                transit=tuple(route.get("transit") or ()),
                destination=route.get("destination"),
            )
        )
    return lines


@dataclass
class Total:
    seizures: int = 0
    lines: int = 0
    quantities: dict[str, Decimal] = field(default_factory=dict)
    """normalised unit → amount, in the order kg, l, tablet, unit"""

    def to_json(self) -> dict[str, Any]:
        return {
            "seizures": self.seizures,
            "lines": self.lines,
            "quantities": {unit: plain(amount) for unit, amount in self.quantities.items()},
        }


def _totals(lines: Sequence[Line], key: Callable[[Line], str]) -> dict[str, Total]:
    alerts: dict[str, set[str]] = {}
    totals: dict[str, Total] = {}
    for line in lines:
        group = key(line)
        total = totals.setdefault(group, Total())
        alerts.setdefault(group, set()).add(line.alert_id)
        total.lines += 1
        total.quantities[line.normalised_unit] = (
            total.quantities.get(line.normalised_unit, Decimal(0)) + line.amount
        )
    for group, total in totals.items():
        total.seizures = len(alerts[group])
        order = {unit: index for index, unit in enumerate(_UNIT_ORDER)}
        total.quantities = dict(
            sorted(total.quantities.items(), key=lambda kv: (order.get(kv[0], len(order)), kv[0]))
        )
    return totals


@dataclass(frozen=True)
class Statistics:
    seizures: int
    lines: int
    by_crossing_point: dict[str, Total]
    by_substance: dict[str, Total]
    by_month: dict[str, Total]
    by_all: dict[tuple[str, str, str, str], Total]
    """(crossing point, substance, normalised unit, month) → total"""

    def to_json(self) -> dict[str, Any]:
        return {
            "seizures": self.seizures,
            "lines": self.lines,
            "by_crossing_point": {k: v.to_json() for k, v in self.by_crossing_point.items()},
            "by_substance": {k: v.to_json() for k, v in self.by_substance.items()},
            "by_month": {k: v.to_json() for k, v in self.by_month.items()},
            "rows": [
                {
                    "crossing_point": crossing,
                    "substance": substance,
                    "unit": unit,
                    "month": month,
                    "seizures": total.seizures,
                    "quantity": plain(total.quantities[unit]),
                }
                for (crossing, substance, unit, month), total in self.by_all.items()
            ],
        }


def compute(lines: Sequence[Line]) -> Statistics:
    """Totals of ``lines``; groups sorted by seizures (most first), months by date."""

    def ranked(totals: dict[str, Total]) -> dict[str, Total]:
        return dict(sorted(totals.items(), key=lambda kv: (-kv[1].seizures, kv[0])))

    combined: dict[tuple[str, str, str, str], Total] = {}
    for joined, total in _totals(
        lines, lambda x: "\0".join((x.crossing_point, x.substance, x.normalised_unit, x.month))
    ).items():
        crossing, substance, unit, month = joined.split("\0")
        combined[(crossing, substance, unit, month)] = total
    return Statistics(
        seizures=len({line.alert_id for line in lines}),
        lines=len(lines),
        by_crossing_point=ranked(_totals(lines, lambda x: x.crossing_point)),
        by_substance=ranked(_totals(lines, lambda x: x.substance)),
        by_month=dict(sorted(_totals(lines, lambda x: x.month).items())),
        by_all=dict(sorted(combined.items())),
    )


class FeedReader(Protocol):
    async def page(self, principal: Principal, *, cursor: int, limit: int) -> FeedPage: ...


async def collect(feed: FeedReader, principal: Principal) -> list[Line]:
    """Every line the principal's agency may read, paging its feed (which checks the principal
    is an analyst of this node's agency, and verifies and opens each alert)."""
    lines: list[Line] = []
    cursor = 0
    while True:
        page = await feed.page(principal, cursor=cursor, limit=_PAGE)
        for alert in page.items:
            lines.extend(lines_of(alert))
        if len(page.items) < _PAGE:
            return lines
        cursor = page.next_cursor
