"""``blo-exchange db …``: one database and login role per agency, one for the ledger.

What a Postgres administrator runs once per database, with the server's superuser URL
(``BLO_SUPERUSER_URL``, never given to a node); see ``db.provision`` and deploy/README.md.
Passwords come from ``BLO_DB_PASSWORD`` or a file (made 0600 with a new one if absent), never
from the command line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.db.engine import migrate
from blo_exchange.db.provision import LEDGER, database_url, grant_witness, provision
from blo_exchange.errors import ConfigurationError

__all__ = ["db_app"]

db_app = typer.Typer(no_args_is_help=True, help="Per-agency databases and roles (as superuser).")

Superuser = Annotated[
    str,
    typer.Option(
        envvar="BLO_SUPERUSER_URL",
        help="The Postgres superuser's URL; used for this command only.",
        show_default=False,
    ),
]
PasswordFile = Annotated[
    Path | None,
    typer.Option(help="A file holding the login role's password (made if absent)."),
]
Password = Annotated[
    str | None,
    typer.Option(
        envvar="BLO_DB_PASSWORD",
        help="The login role's password (from the environment; else --password-file).",
        show_default=False,
        hidden=True,
    ),
]


def _password(given: str | None, path: Path | None) -> str | None:
    if given:
        return given
    if path is None:
        raise ConfigurationError("set BLO_DB_PASSWORD or --password-file")
    return path.read_text(encoding="utf-8").strip() if path.exists() else None


def _keep(path: Path | None, password: str) -> None:
    if path is not None and not path.exists():
        write_private_file(path, (password + "\n").encode("utf-8"))


@db_app.command("create")
def create(
    owner: Annotated[str, typer.Argument(help=f"An agency id, or {LEDGER!r}.")],
    superuser_url: Superuser,
    password_file: PasswordFile = None,
    password: Password = None,
) -> None:
    """Create OWNER's login role and database (no one else may connect), then migrate it as
    that role. For ``ledger`` the role is also the one member of blo_ledger_writer."""

    async def run() -> str:
        grant = await provision(superuser_url, owner, _password(password, password_file))
        _keep(password_file, grant.password)
        url = database_url(superuser_url, grant)
        await migrate(url)
        return f"{grant.database}: owned by {grant.role}, migrated"

    typer.echo(asyncio.run(run()))


@db_app.command("grant-witness")
def grant_witness_role(
    agency: Annotated[str, typer.Argument(help="The agency whose nodes read the ledger.")],
    node: Annotated[list[str], typer.Option(help="Each of the agency's node ids.")],
    superuser_url: Superuser,
    password_file: PasswordFile = None,
    password: Password = None,
) -> None:
    """The agency's role on the ledger database (after ``db create ledger``): reads everything,
    inserts cosignatures, fork evidence and witness keys in its own nodes' names only."""

    async def run() -> str:
        grant = await grant_witness(superuser_url, agency, node, _password(password, password_file))
        _keep(password_file, grant.password)
        return f"{grant.role}: reads {grant.database}, witnesses for {', '.join(node)}"

    typer.echo(asyncio.run(run()))
