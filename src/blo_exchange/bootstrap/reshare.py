"""A node's re-share machinery: the service, and its durable consumer of re-share records.

Every node runs one consumer on ``BLO_RECEIPTS``, filtered to the receipt subjects of its border
pairs. The origin node of an alert decides requests for it and carries out approvals there; a
requesting node follows its requests' state. Other receipts on those subjects are skipped
unverified (only the type is read), and every message is acked once handled.

Where NATS enforces per-node permissions (``bus.permissions``), the operator must create this
consumer (:func:`reshare_consumer_spec`) and allow the node its ``CONSUMER.INFO``,
``CONSUMER.MSG.NEXT`` and ``$JS.ACK`` subjects on ``BLO_RECEIPTS``; see
:func:`reshare_consumer_permissions`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.consumer import BusMessage, PullConsumer
from blo_exchange.bus.consumers import reshare_consumer_spec
from blo_exchange.config import Settings
from blo_exchange.crypto.keyfiles import NodeKeys
from blo_exchange.crypto.keys import HpkeSuite
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.reshare_store import SqlAgencies, SqlReshareStore
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.ports import Directory, Inbox
from blo_exchange.services.reshare import ReshareService

__all__ = ["RecordHandler", "ReshareRuntime"]

RecordHandler = Callable[[str, bytes], Awaitable[str | None]]


@dataclass
class ReshareRuntime:
    service: ReshareService
    consumer: PullConsumer
    counts: Counter[str] = field(default_factory=Counter)

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        node: Node,
        keys: NodeKeys,
        bus: BusConnection,
        sessions: SessionFactory,
        directory: Directory,
        inbox: Inbox,
        records_first: RecordHandler | None = None,
        reading: BusConnection | None = None,
    ) -> ReshareRuntime:
        """``records_first`` sees each record before re-share does; a non-None answer means it
        was its record (counted under that answer) and re-share skips it. ``reading``: where its
        consumer reads receipts, when not ``bus``'s JetStream (a leaf site's node reading the
        hub's, ``BLO_CONSUME_DOMAIN``)."""
        service = ReshareService(
            node=node,
            signer=keys.signing,
            suite=HpkeSuite(settings.suite),
            kem_keys=keys.kem,
            directory=directory,
            agencies=SqlAgencies(sessions),
            inbox=inbox,
            store=SqlReshareStore(sessions),
            publisher=bus,
            clock=utc_now,
        )
        counts: Counter[str] = Counter()

        async def handle(batch: Sequence[BusMessage]) -> None:
            for message in batch:
                outcome = None
                if records_first is not None:
                    outcome = await records_first(message.subject, message.data)
                if outcome is None:
                    outcome = await service.handle_record(message.subject, message.data)
                counts[outcome] += 1
                await message.ack()

        spec = dataclasses.replace(
            reshare_consumer_spec(node, max_deliver=settings.max_deliver),
            create=settings.manage_bus,
        )
        return cls(
            service=service,
            consumer=PullConsumer(reading or bus, spec, handler=handle),
            counts=counts,
        )

    def start(self) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.consumer.run(), name="reshare")]

    def stop(self) -> None:
        self.consumer.stop()
