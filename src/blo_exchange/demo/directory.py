"""The demo deployment's directory: KG, TJ and UZ agencies, four BLO nodes, two agreements.

Used by ``blo-exchange demo`` (``make run``) and by the integration and e2e tests, so what a new
user sees and what the tests prove are the same deployment.

With a statement store, the seed also does what each agency's administrator would do on their own
machine (``docs/administering-trust.md``): create the agency's root key (under
``<key_root>/roots/``, never in a node's key directory), sign a statement for each of its nodes,
node keys, its witness keys and its encryption key, co-sign both agreements with the other
party, all three co-sign the hub ledger's key (``ledger-writer/ledger.key`` under the key root,
where ``make run``'s ledger writer keeps it), and pin the three roots in ``pinned-roots.json`` in
every node's key directory.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from blo_exchange.config import Settings
from blo_exchange.crypto.keyfiles import NodeKeys, create_node_keys
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey, public_key_record
from blo_exchange.crypto.roots import create_root_key, write_pinned_roots
from blo_exchange.crypto.statements import cosign_statement, sign_statement
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.statements import SqlStatementStore
from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.directory import Agency, Agreement, Node, Principal, Role
from blo_exchange.domain.marking import Tlp
from blo_exchange.domain.statements import (
    agreement_statement,
    key_statement,
    ledger_key_statement,
    node_statement,
)
from blo_exchange.ledger.checkpoints import load_or_create_ledger_key
from blo_exchange.services.auth import hash_token, new_token

__all__ = [
    "DEMO_AGENCIES",
    "DEMO_AGREEMENTS",
    "DEMO_NODES",
    "LEDGER_WRITER_DIR",
    "PINNED_ROOTS_FILE",
    "DemoSeed",
    "make_demo_seed",
    "seed_demo",
    "store_seed",
]

PINNED_ROOTS_FILE = "pinned-roots.json"
"""Its name in each node's key directory."""

LEDGER_WRITER_DIR = "ledger-writer"
"""The ledger writer's key directory under the key root (its ``ledger.key``)."""

_LEDGER_ORIGIN: str = Settings.model_fields["ledger_origin"].default

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
        nominal_retention_days=30,
        nominal_retention_max_days=90,
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
    """What a seeding produced: each node's keys and the principals' tokens (shown once), and
    the records every database of the deployment gets (:func:`store_seed`)."""

    keys: dict[str, NodeKeys]
    terminal_tokens: dict[str, str]
    analyst_tokens: dict[str, str]
    auditor_token: str
    admin_token: str
    roots: dict[str, SigningKey] = field(default_factory=dict)
    """Each agency's root key, when statements were signed (their files are under roots/)."""
    nodes: tuple[Node, ...] = ()
    public_keys: tuple[dict[str, Any], ...] = ()
    """``SqlDirectory.add_key`` arguments: the agencies' encryption and the nodes' signing keys."""
    principals: tuple[tuple[Principal, bytes], ...] = ()
    """Each principal with its token's hash."""
    statements: tuple[bytes, ...] = ()


def make_demo_seed(
    key_root: Path,
    *,
    suite: HpkeSuite = HpkeSuite.MLKEM768_X25519,
    node_urls: dict[str, str] | None = None,
    sign: bool = True,
    pinned_dirs: tuple[Path, ...] = (),
) -> DemoSeed:
    """Create the demo's keys under ``key_root/<node_id>``, its principals and (``sign``) the
    roots, signed statements and pinned-roots files (also written to each of ``pinned_dirs``,
    such as the ledger writer's key directory). Nothing is stored in a database yet."""
    urls = node_urls or {}
    agency_keys = {a.id: KemPrivateKey.generate(suite) for a in DEMO_AGENCIES}
    public_keys: list[dict[str, Any]] = []
    for agency in DEMO_AGENCIES:
        public = agency_keys[agency.id].public_key()
        public_keys.append(
            {
                "key_id": public.key_id,
                "owner_kind": "agency",
                "owner_id": agency.id,
                "alg": suite.value,
                "public": public.public,
            }
        )
    keys: dict[str, NodeKeys] = {}
    nodes = tuple(node.model_copy(update={"url": urls.get(node.id)}) for node in DEMO_NODES)
    for node in DEMO_NODES:
        node_keys = create_node_keys(key_root / node.id, agency_key=agency_keys[node.agency_id])
        keys[node.id] = node_keys
        verify_key = node_keys.signing.verify_key()
        public_keys.append(
            {
                "key_id": verify_key.key_id,
                "owner_kind": "node",
                "owner_id": node.id,
                "alg": "Ed25519",
                "public": verify_key.public,
            }
        )

    now = datetime.now(UTC)
    principals: list[tuple[Principal, bytes]] = []

    def principal(role: Role, label: str, node: Node | None = None) -> str:
        token = new_token()
        principals.append(
            (
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
        )
        return token

    roots: dict[str, SigningKey] = {}
    statements: list[bytes] = []
    if sign:
        roots = _sign_statements(statements, key_root, keys, agency_keys, urls, now=now)
        pinned = {agency: key.verify_key() for agency, key in roots.items()}
        for folder in (*(key_root / n.id for n in DEMO_NODES), *pinned_dirs):
            folder.mkdir(parents=True, exist_ok=True)
            write_pinned_roots(folder / PINNED_ROOTS_FILE, pinned)

    terminals = {n.id: principal(Role.TERMINAL, f"{n.id} terminal", n) for n in DEMO_NODES}
    analysts = {n.id: principal(Role.ANALYST, f"{n.id} analyst", n) for n in DEMO_NODES}
    return DemoSeed(
        keys=keys,
        terminal_tokens=terminals,
        analyst_tokens=analysts,
        auditor_token=principal(Role.AUDITOR, "UNODC auditor"),
        admin_token=principal(Role.ADMIN, "demo administrator"),
        roots=roots,
        nodes=nodes,
        public_keys=tuple(public_keys),
        principals=tuple(principals),
        statements=tuple(statements),
    )


async def store_seed(
    seed: DemoSeed,
    directory: SqlDirectory,
    statements: SqlStatementStore | None = None,
    *,
    principals_of: str | None = None,
    principals: bool = True,
) -> None:
    """Write ``seed``'s directory records (and, given a store, its statements) into one
    database. Principals: all of them; with ``principals_of`` an agency id, only that agency's
    and those bound to no agency (auditors, admins: each agency admits them in its own
    database); with ``principals=False`` none (the ledger's database)."""
    for agency in DEMO_AGENCIES:
        await directory.add_agency(agency)
    for node in seed.nodes:
        await directory.add_node(node)
    for key in seed.public_keys:
        await directory.add_key(**key)
    for agreement in DEMO_AGREEMENTS:
        await directory.put_agreement(agreement)
    if statements is not None:
        for raw in seed.statements:
            await statements.add(raw)
    if not principals:
        return
    for principal, token_hash in seed.principals:
        if principals_of is None or principal.agency_id in (None, principals_of):
            await directory.add_principal(principal, token_hash)


async def seed_demo(
    directory: SqlDirectory,
    key_root: Path,
    *,
    suite: HpkeSuite = HpkeSuite.MLKEM768_X25519,
    node_urls: dict[str, str] | None = None,
    statements: SqlStatementStore | None = None,
    pinned_dirs: tuple[Path, ...] = (),
) -> DemoSeed:
    """The whole demo in one database (the integration tests' deployment): keys, records and,
    with ``statements``, the roots, signed statements and pinned-roots files."""
    seed = make_demo_seed(
        key_root,
        suite=suite,
        node_urls=node_urls,
        sign=statements is not None,
        pinned_dirs=pinned_dirs,
    )
    await store_seed(seed, directory, statements)
    return seed


def _sign_statements(
    store: list[bytes],
    key_root: Path,
    keys: dict[str, NodeKeys],
    agency_keys: dict[str, KemPrivateKey],
    urls: dict[str, str],
    *,
    now: datetime,
) -> dict[str, SigningKey]:
    """What each agency's administrator does: (1) create its root, (2) sign its encryption key,
    (3) its nodes, (4) their signing keys and witness keys; (5) every party co-signs each
    agreement; (6) every agency co-signs the hub ledger's key."""
    roots = {a.id: create_root_key(key_root / "roots" / f"{a.id}.key") for a in DEMO_AGENCIES}
    for agency in DEMO_AGENCIES:
        body = key_statement(
            agency=agency.id,
            owner_kind="agency",
            owner_id=agency.id,
            key=public_key_record(agency_keys[agency.id]),
            issued_at=now,
        )
        store.append(sign_statement(body, agency=agency.id, root=roots[agency.id]))
    for node in DEMO_NODES:
        root = roots[node.agency_id]
        registered = node.model_copy(update={"url": urls.get(node.id)})
        store.append(
            sign_statement(
                node_statement(registered, issued_at=now), agency=node.agency_id, root=root
            )
        )
        body = key_statement(
            agency=node.agency_id,
            owner_kind="node",
            owner_id=node.id,
            key=public_key_record(keys[node.id].signing),
            issued_at=now,
        )
        store.append(sign_statement(body, agency=node.agency_id, root=root))
        witness = load_or_create_ledger_key(key_root / node.id / "witness.key")
        body = key_statement(
            agency=node.agency_id,
            owner_kind="witness",
            owner_id=node.id,
            key=public_key_record(witness),
            issued_at=now,
        )
        store.append(sign_statement(body, agency=node.agency_id, root=root))
    for agreement in DEMO_AGREEMENTS:
        first, *others = agreement.parties
        raw = sign_statement(
            agreement_statement(agreement, issued_at=now), agency=first, root=roots[first]
        )
        for party in others:
            raw = cosign_statement(raw, agency=party, root=roots[party])
        store.append(raw)
    ledger_key = load_or_create_ledger_key(key_root / LEDGER_WRITER_DIR / "ledger.key")
    body = ledger_key_statement(
        origin=_LEDGER_ORIGIN,
        agencies=roots,
        key=public_key_record(ledger_key),
        issued_at=now,
    )
    raw = sign_statement(body, agency=DEMO_AGENCIES[0].id, root=roots[DEMO_AGENCIES[0].id])
    for other in DEMO_AGENCIES[1:]:
        raw = cosign_statement(raw, agency=other.id, root=roots[other.id])
    store.append(raw)
    return roots
