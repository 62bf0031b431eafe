"""A small directory with real keys, served by fakes: the demo's agencies, nodes and agreements."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.demo.directory import DEMO_AGENCIES, DEMO_AGREEMENTS, DEMO_NODES
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.services.delivery import DeliveryService
from blo_exchange.services.ingest import IngestService
from blo_exchange.services.receipts import ReceiptPublisher
from tests.unit.services.fakes import FakeDirectory, FakeIdempotency, FakeInbox, FakePublisher

NOW = datetime(2026, 11, 28, 6, 45, tzinfo=UTC)
SUITE = HpkeSuite.X25519


def clock() -> datetime:
    return NOW


@dataclass
class World:
    directory: FakeDirectory = field(default_factory=FakeDirectory)
    publisher: FakePublisher = field(default_factory=FakePublisher)
    signing: dict[str, SigningKey] = field(default_factory=dict)
    agency_keys: dict[str, KemPrivateKey] = field(default_factory=dict)

    @classmethod
    def demo(cls) -> World:
        world = cls()
        world.directory.agreement_list = list(DEMO_AGREEMENTS)
        for agency in DEMO_AGENCIES:
            key = KemPrivateKey.generate(SUITE)
            world.agency_keys[agency.id] = key
            world.directory.kem_keys[agency.id] = key.public_key()
        for node in DEMO_NODES:
            signing = SigningKey.generate()
            world.signing[node.id] = signing
            world.directory.nodes[node.id] = node
            world.directory.signing_keys[node.id] = {signing.key_id: signing.verify_key()}
        return world

    def node(self, node_id: str) -> Node:
        return self.directory.nodes[node_id]

    def terminal(self, node_id: str) -> Principal:
        node = self.node(node_id)
        return Principal(
            id=f"terminal-{node_id}",
            role=Role.TERMINAL,
            node_id=node_id,
            agency_id=node.agency_id,
            label="t",
            created_at=NOW,
        )

    def ingest(
        self,
        node_id: str,
        *,
        idempotency: FakeIdempotency | None = None,
        inbox: FakeInbox | None = None,
        now: Callable[[], datetime] = clock,
    ) -> IngestService:
        idempotency = idempotency or FakeIdempotency()
        inbox = inbox or FakeInbox()
        inbox.idempotency = idempotency  # one database: the inbox completes the same records
        return IngestService(
            node=self.node(node_id),
            signer=self.signing[node_id],
            suite=SUITE,
            directory=self.directory,
            idempotency=idempotency,
            inbox=inbox,
            publisher=self.publisher,
            clock=now,
        )

    def delivery(self, node_id: str, inbox: FakeInbox, publisher: FakePublisher) -> DeliveryService:
        node = self.node(node_id)
        key = self.agency_keys[node.agency_id]
        return DeliveryService(
            node=node,
            kem_keys={key.key_id: key},
            directory=self.directory,
            inbox=inbox,
            receipts=ReceiptPublisher(
                node=node, signer=self.signing[node_id], publisher=publisher, clock=clock
            ),
            clock=clock,
        )
