"""The demo directory as statements each agency's root signed, for tests of what a node believes
from signed statements (the directory, offline packages)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from blo_exchange.crypto.keys import KemPrivateKey, SigningKey, VerifyKey, public_key_record
from blo_exchange.crypto.statements import cosign_statement, sign_statement
from blo_exchange.demo.directory import DEMO_AGENCIES, DEMO_AGREEMENTS, DEMO_NODES
from blo_exchange.domain.directory import Principal
from blo_exchange.domain.statements import agreement_statement, key_statement, node_statement
from blo_exchange.services.statements import TrustedDirectory, verify_statements
from tests.unit.services.world import NOW, SUITE

__all__ = ["NoPrincipals", "Signed"]


class NoPrincipals:
    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return None


@dataclass
class Signed:
    """The demo directory as each agency's root signed it."""

    roots: dict[str, SigningKey] = field(default_factory=dict)
    kem: dict[str, KemPrivateKey] = field(default_factory=dict)
    node_keys: dict[str, SigningKey] = field(default_factory=dict)
    raws: list[bytes] = field(default_factory=list)

    @classmethod
    def demo(cls) -> Signed:
        signed = cls()
        for agency in DEMO_AGENCIES:
            signed.roots[agency.id] = SigningKey.generate()
            signed.kem[agency.id] = KemPrivateKey.generate(SUITE)
            signed.add(agency.id, signed.agency_key(agency.id, signed.kem[agency.id]))
        for node in DEMO_NODES:
            signed.node_keys[node.id] = SigningKey.generate()
            signed.add(node.agency_id, node_statement(node, issued_at=NOW))
            signed.add(
                node.agency_id,
                key_statement(
                    agency=node.agency_id,
                    owner_kind="node",
                    owner_id=node.id,
                    key=public_key_record(signed.node_keys[node.id]),
                    issued_at=NOW,
                ),
            )
        for agreement in DEMO_AGREEMENTS:
            signed.raws.append(signed.agreement(agreement_statement(agreement, issued_at=NOW)))
        return signed

    def agency_key(self, agency: str, key: KemPrivateKey, *, later: int = 0) -> dict[str, object]:
        return key_statement(
            agency=agency,
            owner_kind="agency",
            owner_id=agency,
            key=public_key_record(key),
            issued_at=NOW + timedelta(minutes=later),
        )

    def add(self, agency: str, body: dict[str, object], root: SigningKey | None = None) -> None:
        self.raws.append(sign_statement(body, agency=agency, root=root or self.roots[agency]))

    def agreement(self, body: dict[str, object], parties: tuple[str, ...] | None = None) -> bytes:
        signers = parties or tuple(body["agreement"]["parties"])  # type: ignore[index]
        raw = sign_statement(body, agency=signers[0], root=self.roots[signers[0]])
        for party in signers[1:]:
            raw = cosign_statement(raw, agency=party, root=self.roots[party])
        return raw

    def pinned(self) -> dict[str, VerifyKey]:
        return {agency: root.verify_key() for agency, root in self.roots.items()}

    def directory(self) -> TrustedDirectory:
        return TrustedDirectory(
            verify_statements(self.raws, self.pinned()), principals=NoPrincipals()
        )
