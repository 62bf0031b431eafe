"""Geometry of the statistics page's drawings: horizontal bar charts and a schematic map of the
crossing points, laid out here and drawn as inline SVG by the templates (``_charts.html``), so
the page needs no script, no outside service and nothing beyond ``default-src 'self'``.

The map is schematic: an equirectangular frame over Central Asia with each crossing point at its
approximate latitude and longitude, the countries named at their rough middles, and no borders.
A crossing point it has no position for is listed under the map instead.

Not here: the numbers (``services.statistics``), the words (the templates, from the catalogues).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = ["CROSSING_POSITIONS", "Bar", "BarChart", "CrossingMap", "bar_chart", "crossing_map"]

CHART_WIDTH: Final = 640
_BAR_SPACE: Final = 440  # the longest bar; the rest of the width is for its number
_ROW: Final = 42  # a label line above each bar

CROSSING_POSITIONS: Final[Mapping[str, tuple[float, float]]] = {
    # (latitude, longitude), approximate: enough to tell crossings apart on a schematic map
    "KG-KARAMYK": (39.47, 71.78),
    "TJ-KARAMYK": (39.42, 71.66),
    "TJ-FOTEHOBOD": (40.49, 69.26),
    "UZ-OYBEK": (40.56, 69.34),
}
_COUNTRY_POSITIONS: Final[Mapping[str, tuple[float, float]]] = {
    "KZ": (43.1, 69.5),
    "UZ": (41.6, 66.9),
    "KG": (41.7, 74.6),
    "TJ": (38.6, 70.3),
    "AF": (37.25, 68.8),
}
_NORTH, _SOUTH, _WEST, _EAST = 43.5, 36.9, 65.8, 76.2
_SCALE: Final = 56.0  # pixels per degree of latitude
_SQUEEZE: Final = math.cos(math.radians(40.0))  # a degree of longitude is shorter at 40° N


@dataclass(frozen=True)
class Bar:
    label: str
    text: str
    """the number written after the bar (already formatted)"""
    title: str
    """the bar's tooltip and accessible name"""
    y: int
    width: int


@dataclass(frozen=True)
class BarChart:
    bars: tuple[Bar, ...]
    width: int
    height: int
    bar_height: int = 16


def bar_chart(rows: Sequence[tuple[str, int, str, str]]) -> BarChart:
    """``(label, value, text, title)`` rows as bars, the longest for the largest value."""
    top = max((value for _, value, _, _ in rows), default=0)
    bars = tuple(
        Bar(
            label=label,
            text=text,
            title=title,
            y=index * _ROW,
            width=max(2, round(_BAR_SPACE * value / top)) if top else 2,
        )
        for index, (label, value, text, title) in enumerate(rows)
    )
    return BarChart(bars=bars, width=CHART_WIDTH, height=max(_ROW, len(bars) * _ROW))


@dataclass(frozen=True)
class Place:
    code: str
    x: float
    y: float
    r: float
    count: int
    anchor: str
    """``end`` for a label left of its circle (the country's west side), else ``start``"""


@dataclass(frozen=True)
class CrossingMap:
    width: int
    height: int
    places: tuple[Place, ...]
    countries: tuple[tuple[str, float, float], ...]
    meridians: tuple[tuple[int, float], ...]
    parallels: tuple[tuple[int, float], ...]
    unplaced: tuple[str, ...]


def _xy(lat: float, lon: float) -> tuple[float, float]:
    return (
        round((lon - _WEST) * _SCALE * _SQUEEZE, 1),
        round((_NORTH - lat) * _SCALE, 1),
    )


def crossing_map(seizures: Mapping[str, int]) -> CrossingMap:
    """Every known crossing point, sized by its seizures (the area grows with the count)."""
    top = max(seizures.values(), default=0)
    places = []
    for code, (lat, lon) in CROSSING_POSITIONS.items():
        x, y = _xy(lat, lon)
        count = seizures.get(code, 0)
        r = 4.0 + (14.0 * math.sqrt(count / top) if top else 0.0)
        # the two sides of one crossing lie a few km apart: label them away from each other
        anchor = "end" if code.startswith("TJ-") else "start"
        places.append(Place(code=code, x=x, y=y, r=round(r, 1), count=count, anchor=anchor))
    width, height = _xy(_SOUTH, _EAST)
    return CrossingMap(
        width=math.ceil(width),
        height=math.ceil(height),
        places=tuple(places),
        countries=tuple((code, *_xy(lat, lon)) for code, (lat, lon) in _COUNTRY_POSITIONS.items()),
        meridians=tuple((lon, _xy(_NORTH, lon)[0]) for lon in range(66, 76, 2)),
        parallels=tuple((lat, _xy(lat, _WEST)[1]) for lat in range(37, 44, 2)),
        unplaced=tuple(sorted(code for code in seizures if code not in CROSSING_POSITIONS)),
    )
