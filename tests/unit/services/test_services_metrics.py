"""Histogram buckets are cumulative, as Prometheus expects them."""

from __future__ import annotations

from blo_exchange.services.metrics import Histogram


def test_buckets_are_cumulative_and_inf_counts_everything() -> None:
    histogram = Histogram(buckets=(0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(seconds)
    assert histogram.cumulative() == [(0.1, 2), (1.0, 3), (float("inf"), 4)]
    assert histogram.count == 4
    assert abs(histogram.sum - 3.65) < 1e-9
