"""One database per agency on one real Postgres: what each login role can and cannot reach.

The roles are made by ``db.provision`` as ``make run`` makes them; every refusal here is
Postgres's own (permissions, row policies, the writer-only trigger), not the application's.
"""

from __future__ import annotations

import asyncio
import stat
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.db.engine import create_engine, migrate, session_factory
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.db.provision import (
    LEDGER,
    WRITER_ROLE,
    Grant,
    database_url,
    grant_witness,
    provision,
    role_name,
)
from blo_exchange.embedded import PostgresServer
from blo_exchange.services.ports import NewLedgerEntry


@dataclass
class Agencies:
    kg: str
    tj: str
    ledger: str
    kg_witness: str
    kg_node: str
    tj_node: str


@pytest.fixture
async def agencies(postgres_server: PostgresServer) -> AsyncIterator[Agencies]:
    """KG's, TJ's and a ledger's databases (names unique to this test), migrated by their
    owners, and KG's witness role on the ledger."""
    tag = uuid.uuid4().hex[:8]
    superuser = postgres_server.url
    owners = {"kg": f"kg-{tag}", "tj": f"tj-{tag}"}
    urls = {}
    for short, owner in owners.items():
        urls[short] = database_url(superuser, await provision(superuser, owner))
    ledger_owner = f"{LEDGER}-{tag}"  # tests share the server: a ledger of its own
    grant = await provision(superuser, ledger_owner, writer=True)
    urls["ledger"] = database_url(superuser, grant)
    for url in urls.values():
        await migrate(url)
    kg_node, tj_node = f"blo-kg-{tag}", f"blo-tj-{tag}"
    witness = database_url(
        superuser, await grant_witness(superuser, owners["kg"], [kg_node], ledger=ledger_owner)
    )
    yield Agencies(
        kg=urls["kg"],
        tj=urls["tj"],
        ledger=urls["ledger"],
        kg_witness=witness,
        kg_node=kg_node,
        tj_node=tj_node,
    )
    conn = await asyncpg.connect(superuser)
    try:
        for owner in (*owners.values(), ledger_owner):
            await conn.execute(f"DROP DATABASE IF EXISTS {role_name(owner)} WITH (FORCE)")
        for owner in (*owners.values(), ledger_owner):
            await conn.execute(f"DROP ROLE IF EXISTS {role_name(owner)}_witness")
            await conn.execute(f"DROP ROLE IF EXISTS {role_name(owner)}")
    finally:
        await conn.close()


async def test_no_agency_role_is_a_superuser_or_a_writer(agencies: Agencies) -> None:
    for url in (agencies.kg, agencies.tj, agencies.kg_witness):
        conn = await asyncpg.connect(url)
        try:
            row = await conn.fetchrow(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles "
                "WHERE rolname = current_user"
            )
            assert tuple(row) == (False, False, False, False)
            assert not await conn.fetchval(
                "SELECT pg_has_role(current_user, $1, 'MEMBER')", WRITER_ROLE
            )
        finally:
            await conn.close()


async def test_kg_role_cannot_connect_to_tj_or_the_ledger(agencies: Agencies) -> None:
    kg_role = agencies.kg.split("://", 1)[1].split(":", 1)[0]
    kg_password = agencies.kg.rpartition("@")[0].rpartition(":")[2]
    for other in (agencies.tj, agencies.ledger):
        host_and_db = other.rpartition("@")[2]
        stolen = f"postgresql://{kg_role}:{kg_password}@{host_and_db}"
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="permission denied"):
            await asyncpg.connect(stolen)


async def test_kg_witness_reads_the_ledger_but_cannot_write_it(agencies: Agencies) -> None:
    # The ledger's own role appends (it takes the writer role); KG's witness role reads it.
    engine = create_engine(agencies.ledger, pool_size=1)
    try:
        store = SqlLedgerStore(session_factory(engine))
        entry = NewLedgerEntry(
            event_id=f"event-{uuid.uuid4().hex}",
            type="alert_shared",
            alert_id=None,
            actor_node=agencies.kg_node,
            actor_agency="kg",
            recipients=(),
            border_pair=None,
            kind=None,
            occurred_at=datetime.now(UTC),
            leaf_input=b"leaf",
        )
        assert await store.append([entry]) == [0]
    finally:
        await engine.dispose()
    conn = await asyncpg.connect(agencies.kg_witness)
    try:
        assert await conn.fetchval("SELECT count(*) FROM ledger_entries") == 1
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(
                "INSERT INTO ledger_entries (idx, event_id, type, recipients, occurred_at, "
                "leaf_input, leaf_hash) VALUES (1, 'x', 'alert_shared', '{}', now(), '', '')"
            )
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute(f"SET ROLE {WRITER_ROLE}")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.execute("DELETE FROM ledger_cosignatures")
        # Its own node's witness may cosign; it cannot take TJ's witness's place.
        await conn.execute(
            "INSERT INTO ledger_cosignatures (tree_size, witness, line) VALUES (1, $1, 'l')",
            f"{agencies.kg_node}/witness",
        )
        with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
            await conn.execute(
                "INSERT INTO ledger_cosignatures (tree_size, witness, line) VALUES (1, $1, 'l')",
                f"{agencies.tj_node}/witness",
            )
        # It registers its own nodes' witness keys, and no other key at all.
        await conn.execute(
            "INSERT INTO public_keys (key_id, owner_kind, owner_id, alg, public) "
            "VALUES ($1, 'witness', $2, 'Ed25519', '\\x00')",
            f"w-{uuid.uuid4().hex}",
            agencies.kg_node,
        )
        for kind, owner in (
            ("ledger", "blo-exchange.example/ledger"),
            ("witness", agencies.tj_node),
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError, match="row-level security"):
                await conn.execute(
                    "INSERT INTO public_keys (key_id, owner_kind, owner_id, alg, public) "
                    "VALUES ($1, $2, $3, 'Ed25519', '\\x00')",
                    f"k-{uuid.uuid4().hex}",
                    kind,
                    owner,
                )
    finally:
        await conn.close()


async def test_an_agency_role_cannot_append_to_its_own_ledger_tables(agencies: Agencies) -> None:
    """Every database has the ledger tables (one migration chain); in an agency's they stay
    empty, because its owner is no member of the writer role."""
    engine = create_engine(agencies.kg, pool_size=1)
    try:
        store = SqlLedgerStore(session_factory(engine))
        entry = NewLedgerEntry(
            event_id="e",
            type="alert_shared",
            alert_id=None,
            actor_node=None,
            actor_agency=None,
            recipients=(),
            border_pair=None,
            kind=None,
            occurred_at=datetime.now(UTC),
            leaf_input=b"leaf",
        )
        with pytest.raises(Exception, match="permission denied to set role"):
            await store.append([entry])
    finally:
        await engine.dispose()


def test_cli_creates_a_database_its_role_owns(
    postgres_server: PostgresServer, tmp_path: Path
) -> None:
    owner = f"uz-{uuid.uuid4().hex[:8]}"
    password_file = tmp_path / "uz.password"
    result = CliRunner().invoke(
        app,
        ["db", "create", owner, "--password-file", str(password_file)],
        env={"BLO_SUPERUSER_URL": postgres_server.url},
    )
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    assert password_file.read_text().strip() not in result.output
    grant = Grant(role_name(owner), password_file.read_text().strip(), role_name(owner))

    async def check() -> tuple[str, bool, int]:
        conn = await asyncpg.connect(database_url(postgres_server.url, grant))
        try:
            row = await conn.fetchrow(
                "SELECT pg_get_userbyid(datdba) AS owner, "
                "has_database_privilege('public', current_database(), 'CONNECT') AS public "
                "FROM pg_database WHERE datname = current_database()"
            )
            tables = await conn.fetchval(
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' "
                "AND tableowner = current_user"
            )
            return row["owner"], row["public"], tables
        finally:
            await conn.close()

    try:
        owner_role, public_connect, tables = asyncio.run(check())
        assert owner_role == grant.role  # it owns the database and every table the migrations made
        assert not public_connect
        assert tables > 10
    finally:
        asyncio.run(_drop(postgres_server.url, owner))


async def _drop(superuser: str, owner: str) -> None:
    conn = await asyncpg.connect(superuser)
    try:
        await conn.execute(f"DROP DATABASE IF EXISTS {role_name(owner)} WITH (FORCE)")
        await conn.execute(f"DROP ROLE IF EXISTS {role_name(owner)}")
    finally:
        await conn.close()
