"""The durable consumers of a deployment, named and filtered in one place.

A node's consumers are created by whoever manages the bus (the operator's provisioning, or the
node itself where NATS has no per-node permissions), always with the same filters: the node's
pairs. A node reads alerts through two: ``node-<id>`` for the live lane and ``node-<id>-bulk`` for
the bulk lane (``domain.subjects``), so a burst of bulk alerts never queues before a live one.
"""

from __future__ import annotations

from collections.abc import Sequence

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import BusMessage, ConsumerSpec, PullConsumer
from blo_exchange.bus.streams import (
    ALERTS_STREAM,
    DIRECTORY_STREAM,
    RECEIPTS_STREAM,
    ensure_streams,
)
from blo_exchange.domain.directory import Node
from blo_exchange.domain.subjects import (
    DIRECTORY_SUBJECT,
    alert_subjects_for_pairs,
    receipt_subject,
)

__all__ = [
    "directory_consumer_permissions",
    "directory_consumer_spec",
    "node_consumer_permissions",
    "node_consumer_spec",
    "node_directory_durable",
    "provision_bus",
    "reshare_consumer_permissions",
    "reshare_consumer_spec",
]


def node_consumer_spec(
    node: Node,
    *,
    bulk: bool = False,
    max_deliver: int = 20,
    batch: int = 64,
    ack_wait: float = 10.0,
) -> ConsumerSpec:
    """The node's live lane's consumer, or with ``bulk`` its bulk lane's. The bulk lane handles
    two batches at once: a backlog's checks then run while the other batch waits for its commit
    and receipts (the live lane's batches are small; one at a time keeps its order)."""
    return ConsumerSpec(
        stream=ALERTS_STREAM.name,
        durable=f"node-{node.id}-bulk" if bulk else f"node-{node.id}",
        filter_subjects=tuple(alert_subjects_for_pairs(node.border_pairs, bulk=bulk)),
        max_deliver=max_deliver,
        batch=batch,
        ack_wait=ack_wait,
        parallel=2 if bulk else 1,
    )


def node_consumer_permissions(node: Node) -> list[str]:
    """The publish subjects a node needs to read its two alert consumers under NATS
    permissions."""
    stream = ALERTS_STREAM.name
    subjects: list[str] = []
    for bulk in (False, True):
        durable = node_consumer_spec(node, bulk=bulk).durable
        subjects += [
            f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
            f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
            f"$JS.ACK.{stream}.{durable}.>",
        ]
    return subjects


def reshare_consumer_spec(node: Node, *, max_deliver: int = 20, batch: int = 64) -> ConsumerSpec:
    return ConsumerSpec(
        stream=RECEIPTS_STREAM.name,
        durable=f"reshare-{node.id}",
        filter_subjects=tuple(receipt_subject(pair) for pair in sorted(set(node.border_pairs))),
        max_deliver=max_deliver,
        batch=batch,
    )


def reshare_consumer_permissions(node: Node) -> list[str]:
    """The publish subjects a node needs to read its re-share consumer under NATS permissions."""
    stream, durable = RECEIPTS_STREAM.name, reshare_consumer_spec(node).durable
    return [
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


def directory_consumer_spec(durable: str, *, batch: int = 64) -> ConsumerSpec:
    """A process's copy of the signed directory statements (``durable``: ``directory-<node>``
    for a node, ``ledger-writer-directory`` for the ledger writer). Never gives up on one."""
    return ConsumerSpec(
        stream=DIRECTORY_STREAM.name,
        durable=durable,
        filter_subjects=(DIRECTORY_SUBJECT,),
        max_deliver=-1,
        batch=batch,
    )


def node_directory_durable(node: Node) -> str:
    return f"directory-{node.id}"


def directory_consumer_permissions(node: Node) -> list[str]:
    """The publish subjects a node needs to read its directory consumer under NATS permissions."""
    stream, durable = DIRECTORY_STREAM.name, node_directory_durable(node)
    return [
        f"$JS.API.CONSUMER.INFO.{stream}.{durable}",
        f"$JS.API.CONSUMER.MSG.NEXT.{stream}.{durable}",
        f"$JS.ACK.{stream}.{durable}.>",
    ]


async def _nothing(batch: Sequence[BusMessage]) -> None:
    raise AssertionError("a provisioning consumer never fetches")


async def provision_bus(
    bus: BusConnection, nodes: Sequence[Node], *, duplicate_window: float
) -> None:
    """As the operator: create the streams and every node's durable consumers."""
    await ensure_streams(bus.js, duplicate_window=duplicate_window)
    for node in nodes:
        for spec in (
            node_consumer_spec(node),
            node_consumer_spec(node, bulk=True),
            reshare_consumer_spec(node),
            directory_consumer_spec(node_directory_durable(node)),
        ):
            await PullConsumer(bus, spec, handler=_nothing).ensure()
