"""``blo-exchange nats …``: the NATS server's users and permissions, and the bus's set-up."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from blo_exchange.bus.connection import connect
from blo_exchange.bus.consumers import provision_bus
from blo_exchange.bus.permissions import prepare_nats_auth
from blo_exchange.cli.admin import with_directory
from blo_exchange.config import load_settings
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.domain.directory import Node

__all__ = ["nats_app"]

nats_app = typer.Typer(no_args_is_help=True, help="NATS users, permissions and streams.")


async def _nodes(directory: SqlDirectory) -> list[Node]:
    snapshot = await directory.snapshot()
    return [Node.model_validate(n) for n in snapshot["nodes"]]


@nats_app.command("config")
def config(
    key_root: Annotated[
        Path, typer.Option(help="Seeds go to KEY_ROOT/<node>/nats.nk and KEY_ROOT/ledger-writer/.")
    ],
    out: Annotated[Path, typer.Option(help="Where to write the server's authorization block.")],
) -> None:
    """Write the nats-server `authorization` block: one nkey user per node in the directory
    (its own pairs only), the ledger writer, and an operator who may read but never delete.
    Include the file from the server's config (`include ./auth.conf`)."""
    nodes = asyncio.run(with_directory(load_settings(), _nodes))
    auth = prepare_nats_auth(nodes, key_root)
    write_private_file(out, auth.config.encode("utf-8"))
    typer.echo(f"wrote {out} for {len(nodes)} node(s)")
    for node_id, path in sorted(auth.node_seed_files.items()):
        typer.echo(f"  {node_id}: BLO_NATS_NKEY_FILE={path}")
    typer.echo(f"  ledger writer: BLO_NATS_NKEY_FILE={auth.ledger_writer_seed_file}")
    typer.echo(f"  operator password in {key_root / 'nats-operator.password'}")


@nats_app.command("provision")
def provision(
    url: Annotated[str, typer.Option(envvar="BLO_NATS_URL", help="The operator's NATS URL.")],
) -> None:
    """As the operator: create the streams and every directory node's durable consumer."""
    settings = load_settings()

    async def run() -> int:
        nodes = await with_directory(settings, _nodes)
        bus = await connect(
            url,
            name="provision",
            tls_ca_file=settings.nats_ca_file,
            timeout=settings.nats_timeout,
        )
        try:
            await provision_bus(bus, nodes, duplicate_window=settings.duplicate_window)
        finally:
            await bus.close()
        return len(nodes)

    typer.echo(f"streams and {asyncio.run(run())} node consumer(s) ready")
