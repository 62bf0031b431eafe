"""The demo deployment's directory: KG, TJ and UZ agencies, four BLO nodes, two agreements.

Used by ``blo-exchange demo`` (``make run``) and by the integration and e2e tests, so what a new
user sees and what the tests prove are the same deployment.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from blo_exchange.crypto.keyfiles import NodeKeys, create_node_keys
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.directory import Agency, Agreement, Node, Principal, Role
from blo_exchange.domain.marking import Tlp
from blo_exchange.services.auth import hash_token, new_token

__all__ = ["DEMO_AGENCIES", "DEMO_AGREEMENTS", "DEMO_NODES", "DemoSeed", "seed_demo"]

DEMO_AGENCIES = (
    Agency(id="kg-border-service", country="KG", name="Border Service of the Kyrgyz Republic"),
    Agency(
        id="tj-drug-control-agency",
        country="TJ",
        name="Drug Control Agency of the Republic of Tajikistan",
    ),
    Agency(id="uz-customs-committee", country="UZ", name="Customs Committee of Uzbekistan"),
)

DEMO_NODES = (
    Node(
        id="blo-karamyk-kg",
        agency_id="kg-border-service",
        border_pairs=("KG-TJ",),
        crossing_points=("KG-KARAMYK",),
    ),
    Node(
        id="blo-karamyk-tj",
        agency_id="tj-drug-control-agency",
        border_pairs=("KG-TJ",),
        crossing_points=("TJ-KARAMYK",),
    ),
    Node(
        id="blo-fotehobod-tj",
        agency_id="tj-drug-control-agency",
        border_pairs=("TJ-UZ",),
        crossing_points=("TJ-FOTEHOBOD",),
    ),
    Node(
        id="blo-oybek-uz",
        agency_id="uz-customs-committee",
        border_pairs=("TJ-UZ",),
        crossing_points=("UZ-OYBEK",),
    ),
)

_VALID_FROM = datetime(2026, 1, 1, tzinfo=UTC)

DEMO_AGREEMENTS = (
    Agreement(
        id="mou-kg-tj-2026",
        title="KG-TJ memorandum on inter-agency cooperation at the Karamyk crossing",
        parties=("kg-border-service", "tj-drug-control-agency"),
        border_pairs=("KG-TJ",),
        kinds=(AlertKind.SEIZURE, AlertKind.RISK, AlertKind.FEEDBACK),
        max_tlp=Tlp.AMBER_STRICT,
        nominal=True,
        valid_from=_VALID_FROM,
        valid_until=datetime(2031, 1, 1, tzinfo=UTC),
        memorandum_ref="UNODC-BLO/KG-TJ/2026-01",
    ),
    Agreement(
        id="mou-tj-uz-2026",
        title="TJ-UZ protocol on the exchange of seizure and risk information",
        parties=("tj-drug-control-agency", "uz-customs-committee"),
        border_pairs=("TJ-UZ",),
        kinds=(AlertKind.SEIZURE, AlertKind.RISK, AlertKind.FEEDBACK),
        max_tlp=Tlp.AMBER,
        nominal=False,
        valid_from=_VALID_FROM,
        valid_until=datetime(2031, 1, 1, tzinfo=UTC),
        memorandum_ref="UNODC-BLO/TJ-UZ/2026-03",
    ),
)


@dataclass(frozen=True)
class DemoSeed:
    """What a seeding produced: each node's keys and the principals' tokens (shown once)."""

    keys: dict[str, NodeKeys]
    terminal_tokens: dict[str, str]
    analyst_tokens: dict[str, str]
    auditor_token: str
    admin_token: str


async def seed_demo(
    directory: SqlDirectory,
    key_root: Path,
    *,
    suite: HpkeSuite = HpkeSuite.MLKEM768_X25519,
    node_urls: dict[str, str] | None = None,
) -> DemoSeed:
    """Create the demo's keys under ``key_root/<node_id>`` and its directory records."""
    urls = node_urls or {}
    agency_keys = {a.id: KemPrivateKey.generate(suite) for a in DEMO_AGENCIES}
    for agency in DEMO_AGENCIES:
        await directory.add_agency(agency)
        public = agency_keys[agency.id].public_key()
        await directory.add_key(
            key_id=public.key_id,
            owner_kind="agency",
            owner_id=agency.id,
            alg=suite.value,
            public=public.public,
        )
    keys: dict[str, NodeKeys] = {}
    for node in DEMO_NODES:
        await directory.add_node(node.model_copy(update={"url": urls.get(node.id)}))
        node_keys = create_node_keys(key_root / node.id, agency_key=agency_keys[node.agency_id])
        keys[node.id] = node_keys
        verify_key = node_keys.signing.verify_key()
        await directory.add_key(
            key_id=verify_key.key_id,
            owner_kind="node",
            owner_id=node.id,
            alg="Ed25519",
            public=verify_key.public,
        )
    for agreement in DEMO_AGREEMENTS:
        await directory.put_agreement(agreement)

    now = datetime.now(UTC)

    async def principal(role: Role, label: str, node: Node | None = None) -> str:
        token = new_token()
        await directory.add_principal(
            Principal(
                id=f"{role.value}-{secrets.token_hex(6)}",
                role=role,
                node_id=node.id if node is not None and role is Role.TERMINAL else None,
                agency_id=node.agency_id if node is not None else None,
                label=label,
                created_at=now,
                expires_at=None,
                revoked_at=None,
            ),
            hash_token(token),
        )
        return token

    terminals = {n.id: await principal(Role.TERMINAL, f"{n.id} terminal", n) for n in DEMO_NODES}
    analysts = {n.id: await principal(Role.ANALYST, f"{n.id} analyst", n) for n in DEMO_NODES}
    return DemoSeed(
        keys=keys,
        terminal_tokens=terminals,
        analyst_tokens=analysts,
        auditor_token=await principal(Role.AUDITOR, "UNODC auditor"),
        admin_token=await principal(Role.ADMIN, "demo administrator"),
    )
