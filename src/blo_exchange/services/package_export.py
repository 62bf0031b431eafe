"""Writing an offline package (docs/contracts/packages.md): sealed envelopes for one agency, the
statements that verify them and the ledger's proofs, under a manifest this node signs.

Which envelopes: those in this node's inbox created in ``[since, until)`` and addressed to the
destination agency; by default only the ones this node sealed itself (its own outbound alerts,
which ingest stores in its inbox as it publishes them), with ``relay`` also those it received
from other nodes (a hub carrying to a leaf site). Each is packed as the exact bytes published,
still sealed and signed by its origin: the exporter can neither read another agency's part nor
change a byte without the origin's signature failing at the importer.

The steps: (1) the envelopes, each checked as the importer will (signature, authority, and
addressed to the destination); one that fails here is left out and named in the result, never
packed; (2) the statements those checks used, as verified here; (3) the ledger's proofs, where
the ledger has them (none, and the reason, when it cannot be read); (4) the manifest, signed;
(5) the archive, sealed to the destination agency's current HPKE key, so that whoever carries
it reads nothing, headers included.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from blo_exchange.crypto.canonical import sha256_hex
from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.keys import HpkeSuite, SigningKey
from blo_exchange.crypto.package import (
    CHECKPOINT_MEMBER,
    MANIFEST_MEMBER,
    PACKAGE_FORMAT,
    sign_manifest,
    write_archive,
)
from blo_exchange.crypto.package_seal import seal_package
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import format_time
from blo_exchange.errors import InvalidEnvelope, NotFound
from blo_exchange.services.package_parts import (
    DeliveryConfirmations,
    LedgerProofs,
    ProofSource,
    StatementSource,
    envelope_member,
    proof_member,
    statement_member,
    statements_for,
)
from blo_exchange.services.ports import Directory, Inbox, InboxItem
from blo_exchange.services.signed import SignedMessages

__all__ = ["ExportResult", "PackageExporter"]

_PAGE = 500


@dataclass(frozen=True)
class ExportResult:
    data: bytes
    package_id: str
    alerts: tuple[str, ...]
    statements: int
    proofs: int
    unproven: tuple[str, ...]
    ledger_problem: str | None
    skipped: tuple[tuple[str, str], ...] = field(default=())
    """(alert id, reason) of envelopes that did not verify here and were left out."""


class PackageExporter:
    def __init__(
        self,
        *,
        node: Node,
        signer: SigningKey,
        inbox: Inbox,
        directory: Directory,
        statements: StatementSource,
        proofs: ProofSource | None,
        ledger_origin: str | None,
        suite: HpkeSuite,
        clock: Callable[[], datetime],
        confirmations: DeliveryConfirmations | None = None,
    ) -> None:
        self._node = node
        self._directory = directory
        self._suite = suite
        self._confirmations = confirmations
        self._signer = signer
        self._inbox = inbox
        self._signed = SignedMessages(directory, clock=clock)
        self._statements = statements
        self._proofs = proofs
        self._origin = ledger_origin
        self._clock = clock

    async def export(
        self,
        *,
        for_agency: str,
        since: datetime,
        until: datetime | None = None,
        relay: bool = False,
        package_id: str | None = None,
    ) -> ExportResult:
        now = self._clock()
        sealed_to = await self._directory.current_kem_key(for_agency, self._suite)
        if sealed_to is None:
            raise NotFound(f"{for_agency} has no current {self._suite.value} key to seal to")
        # (1) The envelopes, checked as the importer will check them.
        packed: list[InboxItem] = []
        skipped: list[tuple[str, str]] = []
        nodes: set[str] = {self._node.id}
        agreements: set[str] = set()
        for item in await self._candidates(for_agency, since, until, relay):
            try:
                verified = await self._signed.envelope(
                    UnverifiedEnvelope.parse(item.envelope),
                    border_pair=item.border_pair,
                    kind=item.kind,
                    recipient_agency=for_agency,
                )
            except InvalidEnvelope as exc:
                skipped.append((item.alert_id, getattr(exc, "reason", "invalid")))
                continue
            packed.append(item)
            nodes.add(item.origin_node)
            agreements.update(str(a) for a in verified.header["agreement_ids"])
        members = {envelope_member(i.alert_id): i.envelope for i in packed}
        # (2) The statements those checks rested on.
        chosen = statements_for(
            await self._statements.verified(), nodes=nodes, agreement_ids=agreements
        )
        for statement in chosen:
            members[statement_member(sha256_hex(statement.raw))] = statement.raw
        # (3) The ledger's proofs, where it has them.
        ledger = await self._ledger([(i.alert_id, i.envelope_sha256) for i in packed])
        if ledger.checkpoint is not None and ledger.proofs:
            members[CHECKPOINT_MEMBER] = ledger.checkpoint.encode()
            for alert_id, proof in ledger.proofs.items():
                members[proof_member(alert_id)] = proof
        unproven = tuple(i.alert_id for i in packed if i.alert_id not in ledger.proofs)
        # (4) The manifest, signed by this node.
        package_id = package_id or str(uuid.uuid4())
        body = {
            "format": PACKAGE_FORMAT,
            "package_id": package_id,
            "exporter_node": self._node.id,
            "exporter_agency": self._node.agency_id,
            "for_agency": for_agency,
            "created_at": format_time(now),
            "since": format_time(since),
            "until": None if until is None else format_time(until),
            "relay": relay,
            "alerts": sorted(i.alert_id for i in packed),
            "ledger": {
                "origin": ledger.origin,
                "unproven": sorted(unproven),
                "problem": ledger.problem,
            },
            "members": [
                {"name": name, "sha256": sha256_hex(members[name]), "size": len(members[name])}
                for name in sorted(members)
            ],
        }
        members[MANIFEST_MEMBER] = sign_manifest(body, node=self._node.id, signer=self._signer)
        # (5) Sealed to the destination.
        return ExportResult(
            data=seal_package(write_archive(members), for_agency=for_agency, key=sealed_to),
            package_id=package_id,
            alerts=tuple(sorted(i.alert_id for i in packed)),
            statements=len(chosen),
            proofs=len(ledger.proofs) if ledger.checkpoint is not None else 0,
            unproven=unproven,
            ledger_problem=ledger.problem,
            skipped=tuple(skipped),
        )

    async def unconfirmed(
        self, *, for_agency: str, since: datetime, until: datetime | None = None
    ) -> tuple[str, ...]:
        """This node's own alerts for ``for_agency`` created in the window for which the ledger
        has no ``alert_delivered`` receipt from that agency yet: what a lost package (or a link
        still down) left undelivered. Exporting them again is harmless: import is idempotent.

        A report for the operator from this node's copy of the ledger, not a security check."""
        if self._confirmations is None:
            raise NotFound("no ledger to read delivery receipts from")
        ids = [i.alert_id for i in await self._candidates(for_agency, since, until, False)]
        confirmed = await self._confirmations.confirmed(ids, for_agency)
        return tuple(a for a in ids if a not in confirmed)

    async def _candidates(
        self, for_agency: str, since: datetime, until: datetime | None, relay: bool
    ) -> list[InboxItem]:
        found: list[InboxItem] = []
        after = 0
        while True:
            page = await self._inbox.page(
                self._node.id, self._node.agency_id, after=after, limit=_PAGE
            )
            if not page:
                return found
            after = page[-1].feed_seq
            for item in page:
                if item.created_at < since or (until is not None and item.created_at >= until):
                    continue
                if item.origin_node != self._node.id and not relay:
                    continue
                try:
                    addressed = (
                        for_agency in UnverifiedEnvelope.parse(item.envelope).recipient_agencies
                    )
                except InvalidEnvelope:
                    addressed = False  # verified again in (1) only if addressed; never packed
                if addressed:
                    found.append(item)

    async def _ledger(self, alerts: list[tuple[str, str]]) -> LedgerProofs:
        if self._proofs is None:
            return LedgerProofs(origin=self._origin, problem="no ledger configured")
        if not alerts:
            return LedgerProofs(origin=self._origin)
        try:
            return await self._proofs.collect(alerts)
        except Exception as exc:  # any failure of the optional proofs: see below
            # The envelopes still go: each is signed by its origin, and the importer trusts that
            # signature, not the ledger. The manifest says why there is no proof.
            return LedgerProofs(
                origin=self._origin, problem=f"ledger unreachable: {type(exc).__name__}"
            )
