"""The set checker itself, on hand-made histories: it must see every kind of loss and duplicate."""

from __future__ import annotations

from tests.faults.checker import check


def test_a_clean_history_passes() -> None:
    verdict = check({"k1": "a1", "k2": "a2"}, [("a1", "k1"), ("a2", "k2")], ["a1", "a2", "zz"])
    assert verdict.ok
    assert (verdict.acknowledged, verdict.delivered, verdict.in_ledger) == (2, 2, 2)


def test_lost_in_feed_and_in_ledger() -> None:
    verdict = check({"k1": "a1", "k2": "a2"}, [("a1", "k1")], ["a2"])
    assert verdict.lost == {"a2"}
    assert verdict.lost_in_ledger == {"a1"}
    assert not verdict.ok


def test_every_kind_of_duplicate() -> None:
    twice_in_feed = check({"k1": "a1"}, [("a1", "k1"), ("a1", "k1")], ["a1"])
    assert twice_in_feed.duplicates == ("feed: a1 x2",)
    twice_in_ledger = check({"k1": "a1"}, [("a1", "k1")], ["a1", "a1"])
    assert twice_in_ledger.duplicates == ("ledger: a1 x2",)
    # A retry that was not deduplicated: one request, two alerts, the 202 naming the second.
    retried = check({"k1": "a2"}, [("a1", "k1"), ("a2", "k1")], ["a1", "a2"])
    assert retried.duplicates == (
        "feed: key k1 as 2 alerts",
        "ledger: key k1 as 2 alerts",
        "key k1: acknowledged a2, delivered ['a1']",
    )


def test_delivered_without_a_202_is_allowed_once() -> None:
    verdict = check({}, [("a1", "k1")], ["a1"])
    assert verdict.ok
    assert verdict.unacknowledged_delivered == 1
