"""One database and one login role per agency, one for the ledger, on a Postgres server.

What a Postgres administrator runs once (the demo supervisor does it for ``make run``): it needs
the superuser, and nothing that serves ever connects as one afterwards.

- Each agency's database (``blo_<agency>``) is owned by the agency's login role of the same name,
  which is no superuser and may create no database or role. ``CONNECT`` on it is revoked from
  ``PUBLIC``, so another agency's role (or the ledger's) cannot even open a session there.
- The ledger database (``blo_ledger``) is owned by the role ``blo_ledger``, the only login role
  that is a member of ``blo_ledger_writer`` (the role that alone may insert into the ledger
  tables, migration 0006).
- Each agency's nodes read the ledger for auditors and witness its checkpoints under a role of
  their own, ``blo_<agency>_witness`` (:func:`grant_witness`): SELECT on the ledger database's
  tables, INSERT only on witnesses' cosignatures, fork evidence and witness keys, each in the
  name of that agency's own nodes (row policies). It owns nothing there and is no member of the
  writer role.

Every database gets the same migrations, run by its owner role (``blo-exchange migrate``): an
agency's ledger tables stay empty (its role cannot take the writer role), the ledger database's
inbox and principals stay empty. One schema everywhere keeps one migration chain; which tables a
database *uses* is said in docs/architecture.md.

Not for: creating tables (that is the migrations), or anything a node does at run time.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import quote, urlsplit, urlunsplit

import asyncpg

from blo_exchange.errors import ConfigurationError

__all__ = [
    "LEDGER",
    "WRITER_ROLE",
    "Grant",
    "database_url",
    "grant_witness",
    "provision",
    "role_name",
    "witness_role",
]

LEDGER = "ledger"
"""The name :func:`role_name` turns into the ledger's database and role, ``blo_ledger``."""

WRITER_ROLE = "blo_ledger_writer"
_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def role_name(owner: str) -> str:
    """``kg-border-service`` → ``blo_kg_border_service``: its database's and login role's name."""
    name = "blo_" + re.sub(r"[^a-z0-9]+", "_", owner.lower()).strip("_")
    if not _NAME.fullmatch(name) or len(name) > 50:
        raise ConfigurationError(f"no database name can be made from {owner!r}")
    return name


def witness_role(agency: str) -> str:
    """The role an agency's nodes read (and witness) the ledger with."""
    return role_name(agency) + "_witness"


@dataclass(frozen=True)
class Grant:
    """A login role and the database it connects to."""

    role: str
    password: str
    database: str


def database_url(superuser_url: str, grant: Grant) -> str:
    """``superuser_url`` (any libpq URL of the server) with ``grant``'s role, password and
    database instead."""
    parts = urlsplit(superuser_url)
    host = parts.netloc.rpartition("@")[2]
    netloc = f"{quote(grant.role, safe='')}:{quote(grant.password, safe='')}@{host}"
    return urlunsplit(parts._replace(netloc=netloc, path="/" + quote(grant.database, safe="")))


async def _login_role(conn: asyncpg.Connection, role: str, password: str) -> None:
    exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", role)
    verb = "ALTER" if exists else "CREATE"
    # The password is a literal: CREATE/ALTER ROLE take no bind parameters.
    literal = "'" + password.replace("'", "''") + "'"
    await conn.execute(
        f"{verb} ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION "
        f"NOBYPASSRLS PASSWORD {literal}"
    )


async def provision(
    superuser_url: str, owner: str, password: str | None = None, *, writer: bool | None = None
) -> Grant:
    """Create (or bring back to this state) ``owner``'s login role and database; the role owns
    the database and no one else may connect to it. With ``writer`` (by default: ``owner`` is
    :data:`LEDGER`) the role is also made a member of ``blo_ledger_writer``. A password is made
    when none is given."""
    name = role_name(owner)
    grant = Grant(role=name, password=password or secrets.token_urlsafe(24), database=name)
    conn = await asyncpg.connect(superuser_url)
    try:
        await _login_role(conn, name, grant.password)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f"CREATE DATABASE {name} OWNER {name}")
        await conn.execute(f"ALTER DATABASE {name} OWNER TO {name}")
        await conn.execute(f"REVOKE ALL ON DATABASE {name} FROM PUBLIC")
        if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", WRITER_ROLE):
            await conn.execute(f"CREATE ROLE {WRITER_ROLE} NOLOGIN")
        if owner == LEDGER if writer is None else writer:
            await conn.execute(f"GRANT {WRITER_ROLE} TO {name}")
    finally:
        await conn.close()
    return grant


async def grant_witness(
    superuser_url: str,
    agency: str,
    nodes: Sequence[str],
    password: str | None = None,
    *,
    ledger: str = LEDGER,
) -> Grant:
    """The agency's witness role on the ledger database (after its migrations ran): it reads
    every table there and inserts only cosignatures, fork evidence and witness keys of
    ``nodes`` (row policies). ``ledger`` is the owner :func:`provision` made the ledger's
    database for. A password is made when none is given."""
    ledger = role_name(ledger)
    name = witness_role(agency)
    grant = Grant(role=name, password=password or secrets.token_urlsafe(24), database=ledger)
    conn = await asyncpg.connect(_with_database(superuser_url, ledger))
    try:
        await _login_role(conn, name, grant.password)
        await conn.execute(f"GRANT CONNECT ON DATABASE {ledger} TO {name}")
        await conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
        await conn.execute(
            f"GRANT INSERT ON ledger_cosignatures, ledger_fork_evidence, public_keys TO {name}"
        )
        await conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {name}")
        # The owner (the ledger writer's role) is not subject to the policies; everyone else
        # reads every row and adds rows only in the names of its own agency's nodes' witnesses.
        witnesses = _literals(f"{n}/witness" for n in nodes)
        checks = {
            "public_keys": f"owner_kind = 'witness' AND owner_id IN ({_literals(nodes)})",
            "ledger_cosignatures": f"witness IN ({witnesses})",
            "ledger_fork_evidence": f"witness IN ({witnesses})",
        }
        for table, check in checks.items():
            await conn.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
            await conn.execute(f"DROP POLICY IF EXISTS everyone_reads ON {table}")
            await conn.execute(f"CREATE POLICY everyone_reads ON {table} FOR SELECT USING (true)")
            policy = f"{name}_adds_its_own"
            await conn.execute(f"DROP POLICY IF EXISTS {policy} ON {table}")
            await conn.execute(
                f"CREATE POLICY {policy} ON {table} FOR INSERT TO {name} WITH CHECK ({check})"
            )
    finally:
        await conn.close()
    return grant


def _literals(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "''") + "'" for v in values) or "NULL"


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(database, safe="")))
