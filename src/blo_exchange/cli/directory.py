"""``blo-exchange directory …``: agencies, nodes, keys and agreements in the shared directory.

Every change to keys and agreements is also recorded in the ledger (``key_registered``,
``key_revoked``, ``agreement_changed``) by the ledger writer, within about a second.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from blo_exchange.cli.admin import (
    register_public_keys,
    rotate_agency_key,
    rotate_node_key,
    with_directory,
)
from blo_exchange.config import load_settings
from blo_exchange.crypto.keys import HpkeSuite, public_key_record
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.domain.directory import Agency, Agreement, Node

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


def _parse_at(value: str | None) -> datetime:
    if value is None:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(value)
    except ValueError as exc:
        raise typer.BadParameter("an RFC 3339 time, e.g. 2026-12-01T00:00:00Z") from exc
    if at.tzinfo is None:
        raise typer.BadParameter("give the time zone, e.g. 2026-12-01T00:00:00Z")
    return at.astimezone(UTC)


@directory_app.command("revoke-key")
def revoke_key(
    key_id: str,
    at: Annotated[
        str | None,
        typer.Option(help="RFC 3339 time the revocation takes effect (default: now)."),
    ] = None,
) -> None:
    """Revoke a key from AT: envelopes it signed that arrive after AT are refused.

    Alerts created before AT still display. A time in the past revokes retroactively (a key
    compromised since then); one in the future schedules the end of a rotation's grace period.
    """
    when = _parse_at(at)
    _run(lambda d: d.revoke_key(key_id, when))
    typer.echo(f"key {key_id} revoked from {when.isoformat()}")


@directory_app.command("rotate-agency-key")
def rotate_agency_key_command(
    agency: Annotated[str, typer.Option(help="The agency whose HPKE key is replaced.")],
    key_dir: Annotated[
        list[Path], typer.Option(help="Key directory of each node of the agency; repeat.")
    ],
    suite: Annotated[str, typer.Option()] = HpkeSuite.MLKEM768_X25519.value,
    register: Annotated[
        bool,
        typer.Option(
            help="--no-register: install only, print the public key to register once every "
            "node of the agency (on other machines too) has the key file."
        ),
    ] = True,
) -> None:
    """A new HPKE key for AGENCY: installed (0600) in every KEY_DIR, then registered.

    New alerts are sealed to it within seconds; running nodes pick it up without a restart.
    The old key files stay, so alerts sealed to the old key still open.
    """
    public = _run(
        lambda d: rotate_agency_key(
            d, agency_id=agency, key_dirs=key_dir, suite=HpkeSuite(suite), register=register
        )
    )
    typer.echo(f"agency {agency}: new key {public.key_id} installed in {len(key_dir)} key dir(s)")
    if not register:
        typer.echo(json.dumps([public_key_record(public)], indent=2))


@directory_app.command("rotate-node-key")
def rotate_node_key_command(
    node: Annotated[str, typer.Option(help="The node whose signing key is replaced.")],
    key_dir: Annotated[Path, typer.Option(help="That node's key directory.")],
) -> None:
    """A new signing key for NODE: registered, then put in place of signing.key.

    The old key is kept as signing.<old key id>.key. Restart the node to sign with the new key,
    then revoke the old one with `revoke-key OLD --at TIME` once the grace period is over.
    """
    done = _run(lambda d: rotate_node_key(d, node_id=node, key_dir=key_dir))
    typer.echo(
        f"node {node}: new signing key {done.new_key_id} registered; old key {done.old_key_id} "
        f"kept as {done.archived}. Restart the node, then: blo-exchange directory revoke-key "
        f"{done.old_key_id} --at <end of the grace period>"
    )


@directory_app.command("revoke-principal")
def revoke_principal(principal_id: str) -> None:
    """Revoke a credential now (nodes stop accepting it within seconds)."""
    _run(lambda d: d.revoke_principal(principal_id, datetime.now(UTC)))
    typer.echo(f"principal {principal_id} revoked")


@directory_app.command("principals")
def list_principals() -> None:
    """List credentials (never their tokens, which are not stored), with the device certificate
    each is bound to, if any."""
    for p in _run(SqlDirectory.principals):
        state = "revoked" if p.revoked_at else "active"
        bound = p.node_id or p.agency_id or "-"
        device = "-" if p.device_certificate is None else f"device:{p.device_certificate}"
        typer.echo(f"{p.id}\t{p.role.value}\t{bound}\t{state}\t{p.label}\t{device}")
