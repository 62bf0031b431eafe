"""Two nodes and a ledger for offline-package tests: KG's node seals alerts into its inbox, the
ledger records them and signs a checkpoint, TJ's node imports. Real keys, statements, envelopes,
Merkle tree and notes; only storage is faked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from blo_exchange.crypto.canonical import sha256_hex
from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, SigningKey, VerifyKey
from blo_exchange.crypto.note import NoteSigner, NoteVerifier, format_checkpoint, sign_note
from blo_exchange.crypto.package import read_archive, write_archive
from blo_exchange.crypto.package_seal import open_package, seal_package
from blo_exchange.crypto.statements import VerifiedStatement
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER
from blo_exchange.domain.directory import Agreement, Node, Principal, Role
from blo_exchange.ledger import merkle
from blo_exchange.ledger.entries import build_entry, parse_leaf_input
from blo_exchange.ledger.package_proofs import (
    LedgerConfirmations,
    LedgerProofSource,
    PackageProofChecker,
)
from blo_exchange.ledger.ports import EntryFilter, StoredCheckpoint
from blo_exchange.services.delivery import DeliveryService
from blo_exchange.services.ingest import IngestService
from blo_exchange.services.package_export import PackageExporter
from blo_exchange.services.package_import import PackageImporter
from blo_exchange.services.receipt_queue import QueueingPublisher
from blo_exchange.services.receipts import ReceiptPublisher
from blo_exchange.services.statements import (
    TrustedDirectory,
    accept_statement,
    verify_statements,
)
from tests.unit.services.fakes import FakeInbox, FakePublisher, FakeReceiptQueue
from tests.unit.services.signed_world import NoPrincipals, Signed
from tests.unit.services.world import NOW, SUITE, clock

KG_NODE, TJ_NODE, UZ_NODE = "blo-karamyk-kg", "blo-karamyk-tj", "blo-oybek-uz"
ORIGIN = "blo-exchange.example/ledger"
TJ = "tj-drug-control-agency"


class NodeStatements:
    """A node's own copy of the signed directory (``DirectoryCopy``), and the ``Directory`` port
    over whatever it holds at the moment of each question."""

    def __init__(self, raws: Sequence[bytes], pinned: dict[str, VerifyKey]) -> None:
        self.raws = list(raws)
        self.pinned = pinned

    def _now(self) -> TrustedDirectory:
        return TrustedDirectory(
            verify_statements(self.raws, self.pinned), principals=NoPrincipals()
        )

    async def verified(self) -> Sequence[VerifiedStatement]:
        return self._now().facts.statements

    async def accept(self, raw: bytes) -> str:
        accept_statement(raw, self.pinned)
        if raw in self.raws:
            return "known"
        self.raws.append(raw)
        return "stored"

    async def node(self, node_id: str) -> Node:
        return await self._now().node(node_id)

    async def agreements(self) -> list[Agreement]:
        return await self._now().agreements()

    async def current_kem_key(self, agency_id: str, suite: HpkeSuite) -> KemPublicKey | None:
        return await self._now().current_kem_key(agency_id, suite)

    async def verify_keys(
        self, owner_kind: str, owner_id: str, at: datetime
    ) -> dict[str, VerifyKey]:
        return await self._now().verify_keys(owner_kind, owner_id, at)

    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return None

    def invalidate(self) -> None:
        pass


@dataclass
class FakeLedger:
    """The ledger's store as far as proofs need it: a real RFC 9162 tree and signed notes."""

    key: SigningKey = field(default_factory=SigningKey.generate)
    tree: merkle.MemoryTree = field(default_factory=merkle.MemoryTree)
    leaves: list[bytes] = field(default_factory=list)
    checkpoint: StoredCheckpoint | None = None

    def share(self, raw: bytes) -> None:
        envelope = UnverifiedEnvelope.parse(raw)
        entry = build_entry(
            event_id=f"alert_shared:{envelope.alert_id}",
            type="alert_shared",
            occurred_at=NOW,
            alert_id=envelope.alert_id,
            actor_node=envelope.origin_node,
            actor_agency=envelope.origin_agency,
            recipients=list(envelope.recipient_agencies),
            border_pair=envelope.border_pair,
            kind=envelope.kind,
            envelope_sha256=sha256_hex(raw),
        )
        self.leaves.append(entry.leaf_input)
        self.tree.append(entry.leaf_input)

    def sign(self) -> None:
        size = self.tree.size
        text = format_checkpoint(ORIGIN, size, self.tree.root_at(size))
        note = sign_note(text, [NoteSigner.from_signing_key(ORIGIN, self.key)])
        self.checkpoint = StoredCheckpoint(size, self.tree.root_at(size), note)

    def verifier(self) -> NoteVerifier:
        return NoteVerifier(ORIGIN, self.key.verify_key().public)

    async def latest_checkpoint(self) -> StoredCheckpoint | None:
        return self.checkpoint

    async def entries(
        self, wanted: EntryFilter, *, after: int, limit: int
    ) -> list[tuple[int, bytes]]:
        found = [
            (i, leaf)
            for i, leaf in enumerate(self.leaves)
            if i > after
            and parse_leaf_input(leaf)["alert_id"] == wanted.alert_id
            and parse_leaf_input(leaf)["type"] == wanted.type
        ]
        return found[:limit]

    def delivered(self, alert_id: str, node: Node) -> None:
        """The ledger writer recorded ``node``'s ``alert_delivered`` receipt."""
        entry = build_entry(
            event_id=f"receipt:{node.id}:{alert_id}",
            type="alert_delivered",
            occurred_at=NOW,
            alert_id=alert_id,
            actor_node=node.id,
            actor_agency=node.agency_id,
        )
        self.leaves.append(entry.leaf_input)
        self.tree.append(entry.leaf_input)

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        return self.tree.inclusion_proof(index, size)


@dataclass
class Carry:
    """KG's node, the ledger, and an importing node (TJ's by default)."""

    signed: Signed = field(default_factory=Signed.demo)
    kg_inbox: FakeInbox = field(default_factory=FakeInbox)
    ledger: FakeLedger = field(default_factory=FakeLedger)
    alerts: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.kg = NodeStatements(self.signed.raws, self.signed.pinned())

    def node(self, node_id: str) -> Node:
        return next(n for n in DEMO_NODES if n.id == node_id)

    async def post(self, example: dict[str, Any], key: str, *, ledgered: bool = True) -> bytes:
        """An officer at KG posts an alert: sealed, stored in KG's inbox, published."""
        publisher = FakePublisher()
        node = self.node(KG_NODE)
        ingest = IngestService(
            node=node,
            signer=self.signed.node_keys[KG_NODE],
            suite=SUITE,
            directory=self.kg,
            idempotency=self.kg_inbox.idempotency,  # one database, as in World.ingest
            inbox=self.kg_inbox,
            publisher=publisher,
            clock=clock,
        )
        principal = Principal(
            id="terminal-kg",
            role=Role.TERMINAL,
            node_id=KG_NODE,
            agency_id=node.agency_id,
            label="t",
            created_at=NOW,
        )
        await ingest.submit(principal, ALERT_SUBMISSION_ADAPTER.validate_python(example), key)
        raw = publisher.published[-1][1]
        self.alerts.append(UnverifiedEnvelope.parse(raw).alert_id)
        if ledgered:
            self.ledger.share(raw)
        return raw

    def exporter(
        self,
        node_id: str = KG_NODE,
        *,
        inbox: FakeInbox | None = None,
        statements: NodeStatements | None = None,
    ) -> PackageExporter:
        """KG's node's exporter, or (``node_id``, its inbox and statements) another node's."""
        return PackageExporter(
            node=self.node(node_id),
            signer=self.signed.node_keys[node_id],
            inbox=self.kg_inbox if inbox is None else inbox,
            directory=self.kg if statements is None else statements,
            statements=self.kg if statements is None else statements,
            proofs=LedgerProofSource(self.ledger, origin=ORIGIN),  # type: ignore[arg-type]
            ledger_origin=ORIGIN,
            suite=SUITE,
            clock=clock,
            confirmations=LedgerConfirmations(self.ledger),  # type: ignore[arg-type]
        )

    def members(self, data: bytes, agency: str = TJ) -> dict[str, bytes]:
        """The members of a sealed package, opened with ``agency``'s key."""
        key = self.signed.kem[agency]
        return read_archive(open_package(data, agency=agency, keys={key.key_id: key}))

    def seal(self, members: dict[str, bytes], agency: str = TJ) -> bytes:
        """``members`` archived and sealed to ``agency``'s public key: what anyone can make."""
        key = self.signed.kem[agency].public_key()
        return seal_package(write_archive(members), for_agency=agency, key=key)

    async def export(self, **options: Any) -> bytes:
        self.ledger.sign()
        result = await self.exporter().export(for_agency=TJ, since=NOW, **options)
        return result.data


@dataclass
class Importer:
    """A node that imports: its own statements, inbox and queued receipts."""

    carry: Carry
    node_id: str = TJ_NODE
    own: list[bytes] | None = None
    ledger_keys: list[NoteVerifier] | None = None
    inbox: FakeInbox = field(default_factory=FakeInbox)
    queue: FakeReceiptQueue = field(default_factory=FakeReceiptQueue)
    now: datetime = NOW
    """When the package arrives."""

    def __post_init__(self) -> None:
        signed = self.carry.signed
        self.statements = NodeStatements(
            signed.raws if self.own is None else self.own, signed.pinned()
        )

    def clock(self) -> datetime:
        return self.now

    def service(self) -> PackageImporter:
        signed = self.carry.signed
        node = self.carry.node(self.node_id)
        kem = signed.kem[node.agency_id]
        keys = [self.carry.ledger.verifier()] if self.ledger_keys is None else self.ledger_keys

        async def ledger_keys() -> list[NoteVerifier]:
            return keys

        return PackageImporter(
            node=node,
            kem_keys={kem.key_id: kem},
            roots=signed.pinned(),
            directory=self.statements,
            recipient=DeliveryService(
                node=node,
                kem_keys={kem.key_id: kem},
                directory=self.statements,
                inbox=self.inbox,
                receipts=ReceiptPublisher(
                    node=node,
                    signer=signed.node_keys[self.node_id],
                    publisher=QueueingPublisher(self.queue),
                    clock=self.clock,
                ),
                clock=self.clock,
            ),
            proofs=PackageProofChecker(origin=ORIGIN, ledger_keys=ledger_keys),
            clock=self.clock,
        )


def replace_member(carry: Carry, data: bytes, name: str, content: bytes | None) -> bytes:
    """The package with ``name`` changed (or removed, with None), archived and sealed again to the
    destination's public key: what a courier can do without any private key."""
    members = carry.members(data)
    if content is None:
        del members[name]
    else:
        members[name] = content
    return carry.seal(members)


__all__ = [
    "KG_NODE",
    "ORIGIN",
    "TJ",
    "TJ_NODE",
    "UZ_NODE",
    "Carry",
    "FakeLedger",
    "Importer",
    "NodeStatements",
    "replace_member",
]
