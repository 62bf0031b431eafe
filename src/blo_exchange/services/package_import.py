"""Importing an offline package (docs/contracts/packages.md): verify everything, then deliver
each alert once.

Nobody who carried the package is believed about anything. The checks, in this order; the first
failure refuses the whole package with an ``InvalidPackage`` naming the member, and nothing is
delivered or stored:

(0) the file is sealed to this node's agency and opens with one of its keys
    (``crypto.package_seal``): confidentiality only, since anyone may seal to a public key;
(1) the archive is a complete ustar archive of package members (``crypto.package``);
(2) the manifest is well formed;
(3) every statement member verifies against the roots pinned on this node's disk; the directory
    the checks below use is this node's own verified statements and these, folded together
    (``services.statements``) — a statement can add what its agency's root signed, nothing else;
(4) the manifest is signed by a key that directory gives the exporter node, now, and the
    exporter's agency is that node's;
(5) every member the manifest lists is there with its size and SHA-256, and nothing else is;
(6) the package is for this node's agency;
(7) every envelope is the one its name says, and passes the same verify-and-open step as an
    alert from NATS (``services.signed``: the origin node's unrevoked key, part hashes, the
    origin's authority under the cited agreements, this agency a recipient, and it opens);
(8) the signed checkpoint, when there is one, verifies with the ledger key this node trusts, and
    every proof leads from its envelope's ``alert_shared`` entry to that checkpoint's root. An
    envelope with no proof is accepted (what a node believes is the origin's signature, as for
    NATS delivery) and reported as unproven; ``require_proofs`` refuses it instead.

Then: (9) the statements are kept in this node's copy of the directory; (10) each envelope goes
through the delivery service, exactly as from NATS: the inbox stores an alert id once (a second
import reports duplicates), an expired lookout is rejected there, and the ``alert_delivered``
receipt is signed and queued durably, to be published when NATS is reachable.

Not checked: that the package is the exporter's latest, or that none was lost on the way (the
exporter's ``package unconfirmed`` lists what has no ``alert_delivered`` receipt yet).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from blo_exchange.crypto.canonical import sha256_hex
from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.keys import KemPrivateKey, VerifyKey
from blo_exchange.crypto.package import (
    CHECKPOINT_MEMBER,
    MANIFEST_MEMBER,
    UnverifiedManifest,
    VerifiedManifest,
    read_archive,
)
from blo_exchange.crypto.package_seal import open_package
from blo_exchange.crypto.statements import VerifiedStatement
from blo_exchange.domain.directory import Node, Principal
from blo_exchange.domain.subjects import alert_subject
from blo_exchange.errors import (
    DirectoryError,
    InvalidEnvelope,
    InvalidPackage,
    InvalidStatement,
)
from blo_exchange.services.package_parts import (
    ProofChecker,
    StatementSource,
    envelope_member,
    proof_member,
)
from blo_exchange.services.signed import SignedMessages
from blo_exchange.services.statements import (
    TrustedDirectory,
    accept_statement,
    verify_statements,
)

__all__ = ["CheckedPackage", "DirectoryCopy", "ImportReport", "PackageImporter", "Recipient"]


class DirectoryCopy(StatementSource, Protocol):
    async def accept(self, raw: bytes) -> str:
        """Verify ``raw`` against the pinned roots and keep it; ``stored|known|refused``."""
        ...


class Outcome(Protocol):
    @property
    def status(self) -> str: ...
    @property
    def reason(self) -> str | None: ...


class Recipient(Protocol):
    """The delivery service: the same step an alert from NATS takes."""

    async def handle(self, subject: str, data: bytes, stream_seq: int) -> Outcome: ...


@dataclass(frozen=True)
class ImportReport:
    package_id: str
    exporter_node: str
    delivered: tuple[str, ...] = ()
    duplicates: tuple[str, ...] = ()
    rejected: tuple[tuple[str, str], ...] = ()
    """(alert id, reason) refused by the delivery step itself (an expired lookout)."""
    proven: int = 0
    unproven: tuple[str, ...] = ()
    statements_added: int = 0
    checkpoint_size: int | None = None


@dataclass(frozen=True)
class CheckedPackage:
    """A package that passed steps (0)-(8): what it holds, believed."""

    report: ImportReport
    envelopes: Mapping[str, bytes] = field(repr=False)
    """Envelope bytes by alert id, in the manifest's order."""
    statements: tuple[VerifiedStatement, ...] = field(repr=False)


class _CarriedDirectory(TrustedDirectory):
    """This node's statements and the package's, verified, for the checks of one import."""

    def invalidate(self) -> None:
        """Nothing cached beyond the facts it was built from."""


class _NoPrincipals:
    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return None


class PackageImporter:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        roots: Mapping[str, VerifyKey],
        directory: DirectoryCopy,
        recipient: Recipient,
        proofs: ProofChecker | None,
        clock: Callable[[], datetime],
    ) -> None:
        self._node = node
        self._kem_keys = kem_keys
        self._roots = dict(roots)
        self._directory = directory
        self._recipient = recipient
        self._proofs = proofs
        self._clock = clock

    async def verify(self, data: bytes, *, require_proofs: bool = False) -> CheckedPackage:
        """Steps (0)-(8); raises ``InvalidPackage``. Delivers nothing."""
        now = self._clock()
        archive = open_package(data, agency=self._node.agency_id, keys=self._kem_keys)  # (0)
        members = read_archive(archive)  # (1)
        raw_manifest = members.get(MANIFEST_MEMBER)
        if raw_manifest is None:
            raise InvalidPackage(MANIFEST_MEMBER, "missing")
        unverified = UnverifiedManifest.parse(raw_manifest)  # (2)
        # (3) Statements: believed only under this node's pinned roots.
        carried: list[VerifiedStatement] = []
        for name, raw in members.items():
            if name.startswith("statements/"):
                try:
                    carried.append(accept_statement(raw, self._roots))
                except InvalidStatement as exc:
                    raise InvalidPackage(name, f"statement {exc.reason}") from None
        own = [s.raw for s in await self._directory.verified()]
        trusted = _CarriedDirectory(
            verify_statements([*own, *(s.raw for s in carried)], self._roots),
            principals=_NoPrincipals(),
        )
        # (4) The manifest's signature, by the exporter node's key as that directory has it.
        exporter = unverified.exporter_node
        manifest = unverified.verify(await trusted.verify_keys("node", exporter, now))
        try:
            exporter_agency = (await trusted.node(exporter)).agency_id
        except DirectoryError:
            exporter_agency = None
        if exporter_agency is None or manifest.get("exporter_agency") != exporter_agency:
            raise InvalidPackage(MANIFEST_MEMBER, "exporter_not_in_directory")
        manifest.check_members(members)  # (5)
        if manifest.get("for_agency") != self._node.agency_id:  # (6)
            raise InvalidPackage(MANIFEST_MEMBER, "for_another_agency")
        # (7) Every envelope, through the same step as NATS delivery.
        signed = SignedMessages(trusted, clock=self._clock)
        envelopes = _envelopes(members, manifest)
        for alert_id, raw in envelopes.items():
            name = envelope_member(alert_id)
            try:
                envelope = UnverifiedEnvelope.parse(raw)
                if envelope.alert_id != alert_id:
                    raise InvalidPackage(name, "alert_id_does_not_match_name")
                await signed.open(
                    envelope,
                    border_pair=envelope.border_pair,
                    kind=envelope.kind,
                    agency=self._node.agency_id,
                    kem_keys=self._kem_keys,
                    at=now,
                )
            except InvalidEnvelope as exc:
                raise InvalidPackage(name, getattr(exc, "reason", "invalid")) from None
        # (8) The checkpoint and the proofs.
        proven, size = await self._check_proofs(members, manifest, envelopes)
        unproven = tuple(sorted(set(envelopes) - proven))
        if require_proofs and unproven:
            raise InvalidPackage(envelope_member(unproven[0]), "no_ledger_proof")
        report = ImportReport(
            package_id=str(manifest.get("package_id")),
            exporter_node=exporter,
            proven=len(proven),
            unproven=unproven,
            checkpoint_size=size,
        )
        return CheckedPackage(report=report, envelopes=envelopes, statements=tuple(carried))

    async def import_package(self, data: bytes, *, require_proofs: bool = False) -> ImportReport:
        """Steps (0)-(10)."""
        checked = await self.verify(data, require_proofs=require_proofs)
        report = checked.report
        # (9) Keep the statements: the feed verifies these alerts again each time it opens one.
        added = 0
        for statement in checked.statements:
            added += await self._directory.accept(statement.raw) == "stored"
        # (10) Deliver, as from NATS; stream position 0: it came on no stream.
        delivered: list[str] = []
        duplicates: list[str] = []
        rejected: list[tuple[str, str]] = []
        for alert_id, raw in checked.envelopes.items():
            envelope = UnverifiedEnvelope.parse(raw)
            outcome = await self._recipient.handle(
                alert_subject(envelope.border_pair, envelope.kind), raw, 0
            )
            if outcome.status == "delivered":
                delivered.append(alert_id)
            elif outcome.status == "duplicate":
                duplicates.append(alert_id)
            else:
                rejected.append((alert_id, outcome.reason or outcome.status))
        return ImportReport(
            package_id=report.package_id,
            exporter_node=report.exporter_node,
            delivered=tuple(delivered),
            duplicates=tuple(duplicates),
            rejected=tuple(rejected),
            proven=report.proven,
            unproven=report.unproven,
            statements_added=added,
            checkpoint_size=report.checkpoint_size,
        )

    async def _check_proofs(
        self,
        members: Mapping[str, bytes],
        manifest: VerifiedManifest,
        envelopes: Mapping[str, bytes],
    ) -> tuple[set[str], int | None]:
        proofs = {
            name[len("proofs/") : -len(".json")]: raw
            for name, raw in members.items()
            if name.startswith("proofs/")
        }
        for alert_id in proofs:
            if alert_id not in envelopes:
                raise InvalidPackage(proof_member(alert_id), "proof_of_no_envelope")
        checkpoint = members.get(CHECKPOINT_MEMBER)
        if checkpoint is None:
            if proofs:
                raise InvalidPackage(CHECKPOINT_MEMBER, "missing")
            return set(), None
        ledger = manifest.get("ledger")
        origin = ledger.get("origin") if isinstance(ledger, dict) else None
        if self._proofs is None or not isinstance(origin, str):
            raise InvalidPackage(CHECKPOINT_MEMBER, "no_trusted_ledger_key")
        size = await self._proofs.check(
            origin,
            checkpoint,
            {a: (sha256_hex(envelopes[a]), raw) for a, raw in proofs.items()},
        )
        return set(proofs), size


def _envelopes(members: Mapping[str, bytes], manifest: VerifiedManifest) -> dict[str, bytes]:
    """Envelope members by alert id, in the manifest's order; the manifest's ``alerts`` list must
    name exactly them."""
    envelopes = {
        name[len("envelopes/") : -len(".json")]: members[name]
        for name in manifest.names
        if name.startswith("envelopes/")
    }
    listed: Sequence[str] | None = manifest.get("alerts")
    if not isinstance(listed, list) or sorted(listed) != sorted(envelopes):
        raise InvalidPackage(MANIFEST_MEMBER, "alerts_do_not_match_envelopes")
    return envelopes
