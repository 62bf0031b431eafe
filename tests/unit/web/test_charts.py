"""Chart and map geometry: bars in proportion, every known crossing inside the map frame, the
unknown ones listed rather than drawn."""

from __future__ import annotations

from blo_exchange.web.charts import CROSSING_POSITIONS, bar_chart, crossing_map


def test_bars_are_in_proportion_to_their_values() -> None:
    chart = bar_chart([("a", 4, "4", "a: 4"), ("b", 1, "1", "b: 1"), ("c", 2, "2", "c: 2")])
    widths = [bar.width for bar in chart.bars]
    assert widths == [440, 110, 220]
    assert [bar.y for bar in chart.bars] == [0, 42, 84]
    assert chart.height == 3 * 42
    assert bar_chart([]).bars == ()


def test_map_places_every_known_crossing_inside_its_frame() -> None:
    drawn = crossing_map({"KG-KARAMYK": 4, "TJ-KARAMYK": 1, "KZ-NOWHERE": 2})
    places = {p.code: p for p in drawn.places}
    assert set(places) == set(CROSSING_POSITIONS)
    for place in drawn.places:
        assert 0 < place.x < drawn.width, place
        assert 0 < place.y < drawn.height, place
    assert places["KG-KARAMYK"].r == 18.0  # the most seizures: the largest circle
    assert places["TJ-KARAMYK"].r == 11.0  # a quarter of the seizures: half the radius added
    assert places["UZ-OYBEK"].r == 4.0  # none: the smallest
    assert places["KG-KARAMYK"].x > places["UZ-OYBEK"].x  # east is right
    assert places["UZ-OYBEK"].y < places["KG-KARAMYK"].y  # north is up
    assert drawn.unplaced == ("KZ-NOWHERE",)
