"""``blo-exchange directory …``: agencies, nodes, keys and agreements in the shared directory."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from blo_exchange.assembly.admin import register_public_keys, with_directory
from blo_exchange.config import load_settings
from blo_exchange.domain.directory import Agency, Agreement, Node
from blo_exchange.ledger.directory import SqlDirectory

__all__ = ["directory_app"]

directory_app = typer.Typer(no_args_is_help=True, help="The shared directory (Postgres).")


def _run(action: Any) -> Any:
    return asyncio.run(with_directory(load_settings(), action))


@directory_app.command("show")
def show() -> None:
    """Print the directory as GET /v1/directory serves it."""
    typer.echo(json.dumps(_run(SqlDirectory.snapshot), indent=2))


@directory_app.command("add-agency")
def add_agency(
    agency_id: Annotated[str, typer.Argument(help="e.g. kg-border-service")],
    country: Annotated[str, typer.Option(help="ISO 3166-1 alpha-2")],
    name: Annotated[str, typer.Option()],
) -> None:
    agency = Agency(id=agency_id, country=country, name=name)
    _run(lambda d: d.add_agency(agency))
    typer.echo(f"agency {agency.id} saved")


@directory_app.command("add-node")
def add_node(
    node_id: Annotated[str, typer.Argument(help="e.g. blo-karamyk-kg")],
    agency: Annotated[str, typer.Option()],
    border_pair: Annotated[list[str], typer.Option(help="Repeat for each pair served.")],
    crossing_point: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    url: Annotated[str | None, typer.Option()] = None,
) -> None:
    node = Node(
        id=node_id,
        agency_id=agency,
        border_pairs=tuple(border_pair),
        crossing_points=tuple(crossing_point or ()),
        url=url,
    )
    _run(lambda d: d.add_node(node))
    typer.echo(f"node {node.id} saved")


@directory_app.command("put-agreement")
def put_agreement(
    file: Annotated[Path, typer.Argument(help="JSON: id, title, parties, border_pairs, …")],
) -> None:
    """Create or replace a sharing agreement from a JSON document."""
    agreement = Agreement.model_validate_json(file.read_bytes())
    _run(lambda d: d.put_agreement(agreement))
    typer.echo(f"agreement {agreement.id} saved")


@directory_app.command("register-keys")
def register_keys(
    owner_kind: Annotated[str, typer.Option(help="node | agency")],
    owner_id: Annotated[str, typer.Option()],
    file: Annotated[Path, typer.Argument(help="The JSON that `keys init` printed.")],
) -> None:
    """Register public keys: a node's signing key (owner-kind node) or an agency's HPKE key."""
    records = json.loads(file.read_text())
    if owner_kind == "node":
        records = [r for r in records if r["alg"] == "Ed25519"]
    elif owner_kind == "agency":
        records = [r for r in records if r["alg"] != "Ed25519"]
    else:
        raise typer.BadParameter("owner-kind is node or agency")
    added = _run(
        lambda d: register_public_keys(d, owner_kind=owner_kind, owner_id=owner_id, records=records)
    )
    typer.echo(f"registered {len(added)} key(s): {', '.join(added) or 'none new'}")


@directory_app.command("revoke-key")
def revoke_key(key_id: str) -> None:
    """Revoke a key now: envelopes it signed after now are refused."""
    _run(lambda d: d.revoke_key(key_id, datetime.now(UTC)))
    typer.echo(f"key {key_id} revoked")


@directory_app.command("revoke-principal")
def revoke_principal(principal_id: str) -> None:
    """Revoke a credential now (nodes stop accepting it within seconds)."""
    _run(lambda d: d.revoke_principal(principal_id, datetime.now(UTC)))
    typer.echo(f"principal {principal_id} revoked")


@directory_app.command("principals")
def list_principals() -> None:
    """List credentials (never their tokens, which are not stored)."""
    for p in _run(SqlDirectory.principals):
        state = "revoked" if p.revoked_at else "active"
        bound = p.node_id or p.agency_id or "-"
        typer.echo(f"{p.id}\t{p.role.value}\t{bound}\t{state}\t{p.label}")
