"""Composition of the offline-package commands (docs/contracts/packages.md): the exporter and
the importer of one node, built from its settings, on its own database and keys; no NATS needed.

The importer delivers through a ``DeliveryService`` like the node's own, whose receipts go to the
node's receipt outbox (``services.receipt_queue``) instead of the bus: the node process's
``ReceiptRelay`` publishes them when NATS is reachable, or ``blo-exchange package flush-receipts``
does.
The ledger key that checks a package's checkpoint is the one the importer's signed directory
grants for ``BLO_LEDGER_ORIGIN``: a ``ledger_key`` statement signed by every pinned agency's
root, the same every node's witness checks checkpoints with; never a database row.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

from blo_exchange.bootstrap.directory import signed_directory
from blo_exchange.config import Settings, require_key_dir
from blo_exchange.crypto.keyfiles import load_node_keys
from blo_exchange.crypto.keys import HpkeSuite
from blo_exchange.crypto.note import NoteVerifier
from blo_exchange.crypto.roots import load_pinned_roots
from blo_exchange.crypto.statements import VerifiedStatement
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.db.node_store import SqlInbox
from blo_exchange.db.pending_receipts import SqlReceiptQueue
from blo_exchange.db.statements import SignedDirectory
from blo_exchange.domain.ids import utc_now
from blo_exchange.errors import ConfigurationError
from blo_exchange.ledger.package_proofs import (
    LedgerConfirmations,
    LedgerProofSource,
    PackageProofChecker,
)
from blo_exchange.services.delivery import DeliveryService
from blo_exchange.services.package_export import PackageExporter
from blo_exchange.services.package_import import PackageImporter
from blo_exchange.services.receipt_queue import QueueingPublisher, ReceiptQueue
from blo_exchange.services.receipts import ReceiptPublisher

__all__ = ["PackageServices", "package_services"]


@dataclass(frozen=True)
class PackageServices:
    exporter: PackageExporter
    importer: PackageImporter | None
    """None without ``BLO_PINNED_ROOTS_FILE``: a package's statements need pinned roots."""
    queue: ReceiptQueue


class _Statements:
    """The signed directory's verified statements (none when no roots are pinned)."""

    def __init__(self, trusted: SignedDirectory | None) -> None:
        self._trusted = trusted

    async def verified(self) -> Sequence[VerifiedStatement]:
        return () if self._trusted is None else (await self._trusted.facts()).statements

    async def accept(self, raw: bytes) -> str:
        if self._trusted is None:  # pragma: no cover - no importer is built without roots
            raise ConfigurationError("no pinned roots")
        return await self._trusted.accept(raw)


@asynccontextmanager
async def package_services(settings: Settings) -> AsyncIterator[PackageServices]:
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=2)
    try:
        sessions = session_factory(engine)
        directory = SqlDirectory(sessions)
        trusted = signed_directory(settings, sessions, directory)
        believed = directory if trusted is None else trusted
        node = await believed.node(settings.node_id)
        keys = load_node_keys(require_key_dir(settings))
        inbox = SqlInbox(sessions)
        ledger = SqlLedgerStore(sessions)
        origin = settings.ledger_origin
        statements = _Statements(trusted)
        exporter = PackageExporter(
            node=node,
            signer=keys.signing,
            inbox=inbox,
            directory=believed,
            statements=statements,
            proofs=LedgerProofSource(ledger, origin=origin),
            ledger_origin=origin,
            suite=HpkeSuite(settings.suite),
            clock=utc_now,
            confirmations=LedgerConfirmations(ledger),
        )
        queue = SqlReceiptQueue(sessions, node_id=node.id)
        importer: PackageImporter | None = None
        if trusted is not None and settings.pinned_roots_file is not None:
            signed = trusted

            async def ledger_keys() -> list[NoteVerifier]:
                found = await signed.verify_keys("ledger", origin, utc_now())
                return [NoteVerifier(origin, key.public) for key in found.values()]

            importer = PackageImporter(
                node=node,
                kem_keys=keys.kem,
                roots=load_pinned_roots(settings.pinned_roots_file),
                directory=statements,
                recipient=DeliveryService(
                    node=node,
                    kem_keys=keys.kem,
                    directory=trusted,
                    inbox=inbox,
                    receipts=ReceiptPublisher(
                        node=node,
                        signer=keys.signing,
                        publisher=QueueingPublisher(queue),
                        clock=utc_now,
                    ),
                    clock=utc_now,
                ),
                proofs=PackageProofChecker(origin=origin, ledger_keys=ledger_keys),
                clock=utc_now,
            )
        yield PackageServices(exporter=exporter, importer=importer, queue=queue)
    finally:
        await engine.dispose()
