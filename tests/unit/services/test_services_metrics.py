"""Histogram rendering in the Prometheus text format."""

from __future__ import annotations

from blo_exchange.services.metrics import Histogram


def test_buckets_are_cumulative_and_inf_counts_everything() -> None:
    histogram = Histogram(buckets=(0.1, 1.0))
    for seconds in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(seconds)
    lines = histogram.render("x_seconds", "help", 'node="n"')
    assert lines[:2] == ["# HELP x_seconds help", "# TYPE x_seconds histogram"]
    assert lines[2:] == [
        'x_seconds_bucket{node="n",le="0.1"} 2',
        'x_seconds_bucket{node="n",le="1.0"} 3',
        'x_seconds_bucket{node="n",le="+Inf"} 4',
        'x_seconds_sum{node="n"} 3.650000',
        'x_seconds_count{node="n"} 4',
    ]
