"""The node's ``/metrics``: its services' counters and histograms, exposed with
``prometheus-client`` in the Prometheus text format."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from blo_exchange.services.metrics import Histogram

if TYPE_CHECKING:
    from blo_exchange.bootstrap.lookout import LookoutRuntime
    from blo_exchange.bootstrap.node import NodeRuntime

__all__ = ["render_metrics"]


async def render_metrics(runtime: NodeRuntime) -> str:
    """Accepted alerts, deliveries by outcome, publish and delivery latency, this node's
    consumer lag, consumer failures, ledger appends."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_NodeCollector(runtime, await _consumer_lag(runtime)))
    return generate_latest(registry).decode()


class _NodeCollector(Collector):
    """A snapshot of the node's own counters; nothing is kept between scrapes."""

    def __init__(self, runtime: NodeRuntime, lag: int | None) -> None:
        self._runtime = runtime
        self._lag = lag

    def collect(self) -> Iterator[Metric]:
        runtime, node = self._runtime, self._runtime.node.id
        accepted = CounterMetricFamily(
            "blo_accepted", "Alerts this node accepted (202) from its terminals.", labels=["node"]
        )
        accepted.add_metric([node], runtime.ingest.accepted)
        yield accepted
        delivery = CounterMetricFamily(
            "blo_delivery",
            "Alerts handled by this node's consumer, by outcome.",
            labels=["node", "outcome"],
        )
        for status, count in sorted(runtime.delivery.counts.items()):
            delivery.add_metric([node, status], count)
        yield delivery
        yield _histogram(
            "blo_publish_seconds",
            "JetStream publish of an accepted alert until its ack.",
            node,
            runtime.ingest.publish_seconds,
        )
        yield _histogram(
            "blo_delivery_latency_seconds",
            "From an alert's created_at at its origin to its delivery at this node.",
            node,
            runtime.delivery.delivery_seconds,
        )
        if self._lag is not None:
            pending = GaugeMetricFamily(
                "blo_consumer_pending",
                "Messages waiting in this node's delivery consumer.",
                labels=["node"],
            )
            pending.add_metric([node], self._lag)
            yield pending
        failures = CounterMetricFamily(
            "blo_consumer_failures",
            "Batches whose handler failed and were redelivered.",
            labels=["node"],
        )
        bulk = runtime.bulk_consumer
        failures.add_metric([node], runtime.consumer.failures + (bulk.failures if bulk else 0))
        yield failures
        opens = CounterMetricFamily(
            "blo_feed_opens",
            "Stored alerts the feed verified and opened itself (no shared frame held them).",
            labels=["node"],
        )
        opens.add_metric([node], runtime.feed.opens)
        yield opens
        frames = GaugeMetricFamily(
            "blo_feed_frame_bytes",
            "Plaintext held in memory as opened frames shared by the feed's readers.",
            labels=["node"],
        )
        frames.add_metric([node], runtime.feed.frames.size_bytes)
        yield frames
        if runtime.retention is not None:
            retention = CounterMetricFamily(
                "blo_retention",
                "The personal-data lifecycle: nominal blocks erased, epoch keys destroyed, and "
                "extension records by outcome (docs/retention.md).",
                labels=["node", "outcome"],
            )
            counts = runtime.retention.sweeper.counts + runtime.retention.reviews.counts
            for outcome, count in sorted(counts.items()):
                retention.add_metric([node, outcome], count)
            yield retention
            if runtime.retention.stream_outlives is not None:
                outlives = GaugeMetricFamily(
                    "blo_retention_stream_outlives",
                    "1 when the alerts stream keeps envelopes longer than the shortest nominal "
                    "retention (their nominal parts are not erased there).",
                    labels=["node"],
                )
                outlives.add_metric([node], int(runtime.retention.stream_outlives))
                yield outlives
        if runtime.ledger_writer is not None:
            appended = CounterMetricFamily(
                "blo_ledger_appended", "Entries appended by this process's ledger writer."
            )
            appended.add_metric([], runtime.ledger_writer.writer.appended)
            yield appended
        if runtime.lookout is not None:
            yield from _lookout_metrics(runtime.lookout, node)


def _lookout_metrics(lookout: LookoutRuntime, node: str) -> Iterator[Metric]:
    for name, text, value in (
        ("blo_search_indexed", "Alerts this node's search index took in.", lookout.index.indexed),
        (
            "blo_search_indexed_direct",
            "Of those, alerts indexed from what delivery opened, with no read of the inbox.",
            lookout.index.direct,
        ),
        (
            "blo_lookout_checks",
            "Lookout checks run by this node's terminals.",
            lookout.lookout.checks,
        ),
        (
            "blo_lookout_hits",
            "Risk alerts lookout checks matched (hit receipts signed).",
            lookout.lookout.hits,
        ),
        (
            "blo_hit_receipts_queued",
            "Hit receipts kept for later: the bus did not answer.",
            lookout.hits.queued,
        ),
    ):
        family = CounterMetricFamily(name, text, labels=["node"])
        family.add_metric([node], value)
        yield family


def _histogram(name: str, documentation: str, node: str, histogram: Histogram) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["node"])
    buckets = [("+Inf" if b == float("inf") else repr(b), n) for b, n in histogram.cumulative()]
    family.add_metric([node], buckets, histogram.sum)
    return family


async def _consumer_lag(runtime: NodeRuntime) -> int | None:
    """Pending plus unacknowledged messages of the node's consumer; None when NATS won't say."""
    spec = runtime.consumer.spec
    try:
        info = await asyncio.wait_for(
            runtime.bus.js.consumer_info(spec.stream, spec.durable), timeout=1.0
        )
    except Exception:  # metrics must answer even when NATS does not
        return None
    return int(info.num_pending or 0) + int(info.num_ack_pending or 0)
