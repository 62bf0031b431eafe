"""The demo's databases: one per agency and one for the ledger on its one Postgres server.

The supervisor uses the embedded server's superuser only here, to create the databases and
login roles (``db.provision``) and hand out each role's URL; every database is then migrated by
its own owner role, and no process of the demo connects as superuser. Passwords are made on the
first run and kept in the 0600 credentials file, so the URLs stay the same across runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from blo_exchange.db.engine import migrate
from blo_exchange.db.provision import LEDGER, database_url, grant_witness, provision, role_name
from blo_exchange.demo.directory import DEMO_AGENCIES, DEMO_NODES

__all__ = ["DemoDatabases", "demo_databases", "superuser_url"]


@dataclass(frozen=True)
class DemoDatabases:
    owners: dict[str, str]
    """Agency id (or ``ledger``) → the URL of its database under its owner role."""
    witnesses: dict[str, str]
    """Agency id → the URL of the ledger's database under the agency's witness role."""
    superuser: str
    """The superuser's URL of the ledger's database (operators and tests only)."""

    def document(self) -> dict[str, Any]:
        """Their part of ``demo-credentials.json``."""
        return {
            "databases": dict(self.owners),
            "ledger_witness_databases": dict(self.witnesses),
            "database_url": self.superuser,
        }


def _password(url: str | None) -> str | None:
    return None if url is None else unquote(urlsplit(url).password or "") or None


async def demo_databases(
    superuser: str,
    previous: Mapping[str, Any] | None = None,
    *,
    elsewhere: Mapping[str, str] | None = None,
) -> DemoDatabases:
    """Create (or bring back) every database and role, migrate each as its owner, grant each
    agency's witness role on the ledger; ``previous`` is the credentials of an earlier run.
    ``elsewhere``: the superuser URL of another server for an agency whose database is not on
    ``superuser``'s (a leaf site's own Postgres)."""
    before: Mapping[str, Any] = previous or {}
    servers = dict(elsewhere or {})
    owners: dict[str, str] = {}
    for owner in (LEDGER, *(a.id for a in DEMO_AGENCIES)):
        kept = before.get("databases", {}).get(owner)
        server = servers.get(owner, superuser)
        grant = await provision(server, owner, _password(kept))
        owners[owner] = database_url(server, grant)
        # One after another: Alembic's runs share module state and cannot overlap in threads.
        await migrate(owners[owner])
    witnesses: dict[str, str] = {}
    for agency in DEMO_AGENCIES:
        kept = before.get("ledger_witness_databases", {}).get(agency.id)
        nodes = [n.id for n in DEMO_NODES if n.agency_id == agency.id]
        grant = await grant_witness(superuser, agency.id, nodes, _password(kept))
        witnesses[agency.id] = database_url(superuser, grant)
    return DemoDatabases(
        owners=owners,
        witnesses=witnesses,
        superuser=_on_database(superuser, role_name(LEDGER)),
    )


def superuser_url(credentials: Mapping[str, Any], owner: str) -> str:
    """The superuser's URL of ``owner``'s database (an agency id or ``ledger``), for operators
    and tests that look behind the processes' backs."""
    return _on_database(str(credentials["database_url"]), role_name(owner))


def _on_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + quote(database, safe="")))
