"""A node's delivery consumers: one per lane (live, bulk), each handing its batches to the one
``DeliveryService`` and acking them only after it returned.

Both run on the node's event loop. Delivery yields to the loop after every message it checks, so
a live alert arriving while the bulk lane works through a flood waits for one bulk message, not
for the flood (``domain.subjects`` says what travels on each lane).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import BusMessage, PullConsumer
from blo_exchange.bus.consumers import node_consumer_spec
from blo_exchange.config import Settings
from blo_exchange.domain.directory import Node
from blo_exchange.services.delivery import DeliveryService, Incoming

__all__ = ["deliver_and_ack", "delivery_consumers", "set_aside"]


def delivery_consumers(
    bus: BusConnection, settings: Settings, node: Node, delivery: DeliveryService
) -> tuple[PullConsumer, PullConsumer]:
    """The live lane's consumer and the bulk lane's, configured alike from ``settings``."""
    consumers: list[PullConsumer] = []
    for bulk in (False, True):
        spec = node_consumer_spec(
            node,
            bulk=bulk,
            max_deliver=settings.max_deliver,
            batch=settings.consumer_batch,
            ack_wait=settings.ack_wait,
        )
        consumers.append(
            PullConsumer(
                bus,
                dataclasses.replace(spec, create=settings.manage_bus),
                handler=lambda batch: deliver_and_ack(delivery, batch),
                on_poison=lambda message: set_aside(delivery, message),
            )
        )
    return consumers[0], consumers[1]


DEFER_SECONDS = 1.0
"""When a deferred message (this node's own alert, its own copy not yet committed) comes again."""


async def deliver_and_ack(delivery: DeliveryService, batch: Sequence[BusMessage]) -> None:
    """The whole batch, then every ack: nothing is acked before its effect is committed, and
    nothing of a batch that raised (the consumer then tries its messages one by one). A deferred
    message is handed back (nak) to come again in ``DEFER_SECONDS``."""
    outcomes = await delivery.handle_batch(
        [Incoming(m.subject, m.data, m.stream_seq, m.num_delivered <= 1) for m in batch]
    )
    await asyncio.gather(
        *(
            message.nak(delay=DEFER_SECONDS) if outcome.status == "deferred" else message.ack()
            for message, outcome in zip(batch, outcomes, strict=True)
        )
    )


async def set_aside(delivery: DeliveryService, message: BusMessage) -> None:
    await delivery.set_aside(message.subject, message.data, message.stream_seq)
