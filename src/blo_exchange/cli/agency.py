"""``blo-exchange agency …`` and ``blo-exchange agreement …``: an agency's root key, the
statements it signs, co-signing agreements, pinning partners' roots, and publishing statements.

Everything but ``statement publish`` runs offline, on the administrator's machine that holds the
root key file; nothing here reads or writes the root key anywhere else. See
``docs/administering-trust.md`` for the walkthrough and ``docs/statements.md`` for the format.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from blo_exchange.bus.connection import connect
from blo_exchange.config import load_settings
from blo_exchange.crypto.keys import VerifyKey, public_key_from_record, public_key_record
from blo_exchange.crypto.roots import (
    create_root_key,
    load_pinned_roots,
    load_root_key,
    write_pinned_roots,
)
from blo_exchange.crypto.statements import (
    UnverifiedStatement,
    VerifiedStatement,
    cosign_statement,
    sign_statement,
)
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.statements import SqlStatementStore
from blo_exchange.domain.directory import Agreement, Node
from blo_exchange.domain.statements import (
    agreement_statement,
    key_statement,
    ledger_key_statement,
    node_statement,
    required_signers,
    revocation_statement,
    signers_to_check,
)
from blo_exchange.domain.subjects import DIRECTORY_SUBJECT
from blo_exchange.errors import BusError, ConfigurationError, InvalidStatement

__all__ = ["agency_app", "agreement_app", "statement_app"]

agency_app = typer.Typer(no_args_is_help=True, help="An agency's root key and its statements.")
agreement_app = typer.Typer(no_args_is_help=True, help="Propose and co-sign agreements.")
statement_app = typer.Typer(no_args_is_help=True, help="Check and publish signed statements.")

RootOption = Annotated[Path, typer.Option("--root", help="The agency's root key file (0600).")]
AgencyOption = Annotated[str, typer.Option("--agency", help="The agency whose root signs.")]
OutOption = Annotated[Path, typer.Option("--out", help="Where to write the statement.")]


def _now() -> datetime:
    return datetime.now(UTC)


def _write(path: Path, raw: bytes) -> None:
    path.write_bytes(raw + b"\n")
    statement = UnverifiedStatement.parse(raw)
    typer.echo(f"statement {statement.statement_id} signed by {', '.join(statement.signers)}")


@agency_app.command("init-root")
def init_root(
    agency: AgencyOption,
    out: Annotated[Path, typer.Option("--out", help="The new root key file; never overwritten.")],
) -> None:
    """Create the agency's root signing key. Keep the file off every node. Prints the public
    record and its fingerprint, for the MoU annex and for partners to pin."""
    root = create_root_key(out)
    record = {"agency": agency} | public_key_record(root)
    typer.echo(json.dumps(record))
    typer.echo(f"fingerprint {root.key_id}", err=True)


@agency_app.command("pin")
def pin(
    roots_file: Annotated[Path, typer.Argument(help="The pinned-roots file to create or extend.")],
    record: Annotated[Path, typer.Option(help="A root's public record (init-root's output).")],
    fingerprint: Annotated[
        str, typer.Option(help="The fingerprint as the MoU annex states it, to compare.")
    ],
) -> None:
    """Pin a partner's (or one's own) root in a node's pinned-roots file, after checking its
    fingerprint against the one agreed on paper."""
    document = json.loads(record.read_text())
    agency = str(document.pop("agency"))
    key = public_key_from_record(document)
    # (1) A signing key, (2) whose fingerprint is the agreed one.
    if not isinstance(key, VerifyKey) or key.key_id != fingerprint.strip().lower():
        raise ConfigurationError(f"the root of {agency} does not have fingerprint {fingerprint}")
    roots = load_pinned_roots(roots_file) if roots_file.exists() else {}
    if agency in roots and roots[agency] != key:
        raise ConfigurationError(f"{agency} is pinned to another root already; edit by hand")
    roots[agency] = key
    write_pinned_roots(roots_file, roots)
    typer.echo(f"{agency} pinned in {roots_file}")


@agency_app.command("sign-node")
def sign_node(
    root: RootOption,
    agency: AgencyOption,
    node_id: Annotated[str, typer.Option("--node")],
    border_pair: Annotated[list[str], typer.Option(help="Repeat for each pair served.")],
    out: OutOption,
    crossing_point: Annotated[list[str] | None, typer.Option(help="Repeatable.")] = None,
    url: Annotated[str | None, typer.Option()] = None,
) -> None:
    """A statement registering one of the agency's nodes, the pairs and crossings it serves."""
    node = Node(
        id=node_id,
        agency_id=agency,
        border_pairs=tuple(border_pair),
        crossing_points=tuple(crossing_point or ()),
        url=url,
    )
    body = node_statement(node, issued_at=_now())
    _write(out, sign_statement(body, agency=agency, root=load_root_key(root)))


@agency_app.command("sign-key")
def sign_key(
    root: RootOption,
    agency: AgencyOption,
    owner_kind: Annotated[str, typer.Option(help="node | agency | witness")],
    owner_id: Annotated[
        str, typer.Option(help="The node id (node, witness), or the agency id itself.")
    ],
    record: Annotated[
        Path, typer.Option(help="The public key record (keys init's or keys witness's output).")
    ],
    out: OutOption,
) -> None:
    """A statement registering a public key: a node's signing key, the agency's HPKE key, or the
    witness key of one of its nodes (whose cosignatures auditors then count)."""
    if owner_kind not in ("node", "agency", "witness"):
        raise ConfigurationError(
            "--owner-kind is node, agency or witness (the ledger's key is "
            "co-signed by every agency: propose-ledger-key)"
        )
    document = json.loads(record.read_text())
    records = document if isinstance(document, list) else [document]
    if len(records) != 1:
        raise ConfigurationError("give one key record per statement")
    key = public_key_from_record(records[0])
    body = key_statement(
        agency=agency,
        owner_kind=owner_kind,
        owner_id=owner_id,
        key=public_key_record(key),
        issued_at=_now(),
    )
    _write(out, sign_statement(body, agency=agency, root=load_root_key(root)))


@agency_app.command("revoke-key")
def revoke_key(
    root: RootOption,
    agency: AgencyOption,
    key_id: Annotated[str, typer.Option("--key-id")],
    out: OutOption,
    at: Annotated[datetime | None, typer.Option(help="Default: now.")] = None,
) -> None:
    """A statement revoking one of the agency's keys (or one of its nodes') from ``--at`` on."""
    when = at or _now()
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)  # a time given without a zone is UTC
    body = revocation_statement(agency=agency, key_id=key_id, revoked_at=when, issued_at=_now())
    _write(out, sign_statement(body, agency=agency, root=load_root_key(root)))


@agreement_app.command("propose")
def propose(
    file: Annotated[Path, typer.Argument(help="JSON: id, title, parties, border_pairs, …")],
    root: RootOption,
    agency: AgencyOption,
    out: OutOption,
    retention_days: Annotated[
        int | None,
        typer.Option(
            "--nominal-retention-days",
            help="Days a recipient may keep an alert's nominal block (required if nominal).",
        ),
    ] = None,
    retention_max_days: Annotated[
        int | None,
        typer.Option(
            "--nominal-retention-max-days",
            help="Days from an alert's creation up to which its originator may extend that "
            "(default: no extension).",
        ),
    ] = None,
) -> None:
    """Sign an agreement as its first party; send the file to the others to ``sign``.

    A nominal agreement must say how long recipients may keep the nominal block: in the file
    (``nominal_retention_days``) or with ``--nominal-retention-days``; the options win."""
    terms = json.loads(file.read_bytes())
    if not isinstance(terms, dict):
        raise ConfigurationError(f"{file}: the terms are a JSON object")
    if retention_days is not None:
        terms["nominal_retention_days"] = retention_days
    if retention_max_days is not None:
        terms["nominal_retention_max_days"] = retention_max_days
    agreement = Agreement.model_validate(terms)
    if agreement.nominal and agreement.nominal_retention_days is None:
        raise ConfigurationError(
            f"{agreement.id} shares the nominal block: give --nominal-retention-days"
        )
    if agency not in agreement.parties:
        raise ConfigurationError(f"{agency} is not a party to {agreement.id}")
    body = agreement_statement(agreement, issued_at=_now())
    _write(out, sign_statement(body, agency=agency, root=load_root_key(root)))


@agreement_app.command("sign")
def cosign(
    file: Annotated[Path, typer.Argument(help="The proposed agreement statement.")],
    root: RootOption,
    agency: AgencyOption,
    out: OutOption,
    yes: Annotated[bool, typer.Option("--yes", help="Sign without showing the terms.")] = False,
) -> None:
    """Add this party's signature, after showing the terms it signs."""
    _cosign(file, root, agency, out, kind="agreement", yes=yes)


def _cosign(file: Path, root: Path, agency: str, out: Path, *, kind: str, yes: bool) -> None:
    """Add ``agency``'s signature to a statement of ``kind`` that needs it, after showing what
    it grants (an agreement's terms; a ledger key's origin, agencies and key)."""
    raw = file.read_bytes().rstrip(b"\n")
    body = UnverifiedStatement.parse(raw).body
    if body.get("type") != kind or agency not in required_signers(body):
        raise ConfigurationError(f"not a {kind} statement that {agency} must sign")
    if not yes:
        shown = (
            body["agreement"]
            if kind == "agreement"
            else {k: body[k] for k in ("origin", "agencies", "key")}
        )
        typer.echo(json.dumps(shown, indent=2))
        typer.confirm(f"sign this {kind} for {agency}?", abort=True)
    _write(out, cosign_statement(raw, agency=agency, root=load_root_key(root)))


@agency_app.command("propose-ledger-key")
def propose_ledger_key(
    root: RootOption,
    agency: AgencyOption,
    origin: Annotated[str, typer.Option(help="The ledger's origin (BLO_LEDGER_ORIGIN).")],
    member: Annotated[
        list[str], typer.Option(help="Every agency of the hub, this one included; repeat.")
    ],
    record: Annotated[Path, typer.Option(help="The ledger key's public record (keys ledger).")],
    out: OutOption,
) -> None:
    """Sign the hub ledger's checkpoint key as its first agency; send the file to every other
    member to ``sign-ledger-key``. Nodes believe the key only once every agency they pin signed."""
    if agency not in member:
        raise ConfigurationError(f"{agency} is not among the --member agencies")
    key = public_key_from_record(json.loads(record.read_text()))
    if not isinstance(key, VerifyKey):
        raise ConfigurationError("a ledger key is an Ed25519 signing key's public record")
    body = ledger_key_statement(
        origin=origin, agencies=member, key=public_key_record(key), issued_at=_now()
    )
    _write(out, sign_statement(body, agency=agency, root=load_root_key(root)))


@agency_app.command("sign-ledger-key")
def sign_ledger_key(
    file: Annotated[Path, typer.Argument(help="The proposed ledger key statement.")],
    root: RootOption,
    agency: AgencyOption,
    out: OutOption,
    yes: Annotated[bool, typer.Option("--yes", help="Sign without showing the key.")] = False,
) -> None:
    """Add this agency's signature to a proposed ledger key, after showing what it grants."""
    _cosign(file, root, agency, out, kind="ledger_key", yes=yes)


def _checked(file: Path, roots: Mapping[str, VerifyKey]) -> VerifiedStatement:
    """The statement in ``file``, verified as a node will; a clear error naming what is wrong."""
    raw = file.read_bytes().rstrip(b"\n")
    try:
        statement = UnverifiedStatement.parse(raw)
        needed = signers_to_check(statement.body, roots)
    except (InvalidStatement, ValueError) as exc:
        why = str(exc) if isinstance(exc, ValueError) else "not a valid statement"
        raise InvalidStatement("malformed", f"{file}: {why}") from exc
    missing = [a for a in needed if a not in statement.signers]
    if missing:
        raise InvalidStatement("unsigned", f"{file}: not yet signed by {', '.join(missing)}")
    try:
        return statement.verify(roots, required=needed)
    except InvalidStatement as exc:
        raise InvalidStatement(exc.reason, f"{file}: {exc.reason} (check pinned roots)") from exc


@statement_app.command("verify")
def verify(
    files: Annotated[list[Path], typer.Argument()],
    roots_file: Annotated[Path, typer.Option("--roots", help="A pinned-roots file.")],
) -> None:
    """Check statements against pinned roots, as a node will."""
    roots = load_pinned_roots(roots_file)
    for file in files:
        statement = _checked(file, roots)
        typer.echo(f"{file}: {statement.body['type']} signed by {', '.join(statement.signers)}")


@statement_app.command("publish")
def publish(
    files: Annotated[list[Path], typer.Argument()],
    roots_file: Annotated[Path, typer.Option("--roots", help="A pinned-roots file.")],
    to: Annotated[
        str,
        typer.Option(
            help="nats: on the directory stream (BLO_NATS_URL), which every node and the "
            "ledger writer copy; database: straight into one database (BLO_DATABASE_URL)."
        ),
    ] = "nats",
) -> None:
    """Verify statements against pinned roots, then publish them. Every process checks them
    again against its own pinned roots before it believes them."""
    roots = load_pinned_roots(roots_file)
    raws = [_checked(file, roots).raw for file in files]
    if to not in ("nats", "database"):
        raise ConfigurationError("--to is nats or database")
    results = asyncio.run(_to_nats(raws) if to == "nats" else _to_database(raws))
    for file, added in zip(files, results, strict=True):
        typer.echo(f"{file}: {'published' if added else 'already published'}")


async def _to_database(raws: list[bytes]) -> list[bool]:
    engine = create_engine(load_settings().database_url.get_secret_value(), pool_size=1)
    try:
        store = SqlStatementStore(session_factory(engine))
        return [await store.add(raw) for raw in raws]
    finally:
        await engine.dispose()


async def _to_nats(raws: list[bytes]) -> list[bool]:
    settings = load_settings()
    try:
        bus = await asyncio.wait_for(
            connect(
                settings.nats_url.get_secret_value(),
                name="statement-publisher",
                credentials=settings.nats_credentials,
                nkey_seed_file=settings.nats_nkey_file,
                timeout=settings.nats_timeout,
            ),
            timeout=settings.nats_timeout * 2,
        )
    except TimeoutError:
        raise BusError("NATS (BLO_NATS_URL) did not answer; nothing was published") from None
    try:
        # The message id is the bytes' hash: publishing the same statement twice keeps one.
        return [
            not (
                await bus.publish(DIRECTORY_SUBJECT, raw, msg_id=hashlib.sha256(raw).hexdigest())
            ).duplicate
            for raw in raws
        ]
    finally:
        await bus.close()
