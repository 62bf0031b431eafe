"""TAXII paging without HTTP: positions, next tokens, pages of any size."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from blo_exchange.interop.taxii import (
    AlertObjects,
    InvalidNextError,
    Position,
    collection_id,
    format_added,
    manifest_record,
    paginate,
)

T0 = datetime(2026, 12, 4, 10, 0, 0, 123456, tzinfo=UTC)


def alerts(sizes: list[int]) -> list[AlertObjects]:
    return [
        AlertObjects(
            T0 + timedelta(microseconds=n), n + 1, [{"id": f"x--{n}-{i}"} for i in range(size)]
        )
        for n, size in enumerate(sizes)
    ]


def read_all(all_alerts: list[AlertObjects], limit: int) -> list[str]:
    """What a client paging with ``limit`` gets, the server fetching from each position."""
    got: list[str] = []
    start: Position | None = None
    for _ in range(1000):
        rest = [
            a for a in all_alerts if start is None or (a.added, a.seq) >= (start.added, start.seq)
        ]
        window = rest[: limit // 2 + 2]
        page = paginate(window, start=start, limit=limit, exhausted=len(window) == len(rest))
        assert len(page.objects) <= limit
        got += [o["id"] for _, o in page.objects]
        if not page.more:
            return got
        assert page.next is not None
        start = Position.parse(page.next.token())
    raise AssertionError("paging did not end")


@given(
    sizes=st.lists(st.integers(min_value=0, max_value=9), max_size=12),
    limit=st.integers(min_value=1, max_value=30),
)
def test_any_page_size_reads_every_object_once_in_order(sizes: list[int], limit: int) -> None:
    everything = [o["id"] for a in alerts(sizes) for o in a.objects]
    assert read_all(alerts(sizes), limit) == everything


def test_a_full_page_at_the_very_end_says_no_more() -> None:
    page = paginate(alerts([2, 3]), start=None, limit=5, exhausted=True)
    assert (len(page.objects), page.more, page.next) == (5, False, None)


def test_next_tokens_round_trip_to_the_microsecond() -> None:
    position = Position(T0, 42, 3)
    assert Position.parse(position.token()) == position
    assert format_added(T0) == "2026-12-04T10:00:00.123456Z"


@pytest.mark.parametrize("token", ["", "garbage!", "W10", "WyJ4IiwxLDJd", "x" * 201])
def test_a_token_this_server_did_not_issue_is_refused(token: str) -> None:
    with pytest.raises(InvalidNextError):
        Position.parse(token)


def test_a_negative_position_is_refused() -> None:
    with pytest.raises(InvalidNextError):
        Position.parse(Position(T0, -1, 0).token())


def test_collections_are_per_node_and_pair() -> None:
    ids = {
        collection_id(node, pair)
        for node in ("blo-karamyk-kg", "blo-karamyk-tj")
        for pair in (None, "KG-TJ")
    }
    assert len(ids) == 4
    assert collection_id("blo-karamyk-kg", "KG-TJ") == collection_id("blo-karamyk-kg", "KG-TJ")


def test_manifest_version_is_modified_else_created_else_date_added() -> None:
    added = format_added(T0)
    assert manifest_record(T0, {"id": "a", "modified": "m", "created": "c"})["version"] == "m"
    assert manifest_record(T0, {"id": "a", "created": "c"})["version"] == "c"
    assert manifest_record(T0, {"id": "a"})["version"] == added
