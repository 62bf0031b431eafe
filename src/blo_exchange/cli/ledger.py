"""``blo-exchange ledger``: check an exported ledger, offline or fetched from a node."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer

from blo_exchange.cli.client import Ca, tls_verification
from blo_exchange.crypto.roots import load_pinned_roots
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.ledger.merkle import MemoryTree
from blo_exchange.ledger.verify import BundleError, TrustStore, verify_bundle
from blo_exchange.ledger.verify_roots import GrantedKeys, granted_keys

__all__ = ["ledger_app"]

ledger_app = typer.Typer(no_args_is_help=True, help="The tamper-evident ledger.")


@ledger_app.command()
def verify(
    bundle: Annotated[
        Path | None, typer.Argument(help="An export bundle (GET /v1/ledger/export).")
    ] = None,
    url: Annotated[str | None, typer.Option(help="Fetch the bundle from this node.")] = None,
    token: Annotated[
        str | None, typer.Option(help="An auditor's bearer token, with --url.", envvar="BLO_TOKEN")
    ] = None,
    ca: Ca = None,
    trust: Annotated[
        Path | None,
        typer.Option(help="Checkpoints accepted before, and the pinned key; updated on success."),
    ] = None,
    key: Annotated[
        str | None, typer.Option(help="The ledger's C2SP verifier key (a pinned key wins).")
    ] = None,
    witnesses: Annotated[
        int,
        typer.Option(
            "--witnesses",
            min=0,
            help="Require this many valid cosignatures by pinned witness keys.",
        ),
    ] = 0,
    witness_key: Annotated[
        list[str] | None,
        typer.Option(
            "--witness-key", help="A witness's C2SP cosigner key (repeatable; wins over pinned)."
        ),
    ] = None,
    directory: Annotated[
        Path | None,
        typer.Option(
            "--directory",
            help="Node keys to check each entry's signed record with (JSON: node -> "
            "{agency, keys: [{key_id, public}]}); default: the bundle's node_keys.",
        ),
    ] = None,
    roots: Annotated[
        Path | None,
        typer.Option(
            "--roots",
            help="Your pinned-roots file: take the ledger, witness and node keys only from the "
            "bundle's statements that verify against it (a ledger key needs every agency's "
            "signature).",
        ),
    ] = None,
    sharing: Annotated[
        bool,
        typer.Option(
            "--sharing",
            help="Print who shared with whom, counted from the verified entries (CSV).",
        ),
    ] = False,
) -> None:
    """Recompute the ledger from its entries and check it against its signed checkpoints and
    those accepted before. Exit 0 when all holds, 1 when it does not, 2 on bad input."""
    if (bundle is None) == (url is None):
        _fail("give either BUNDLE or --url", 2)
    try:
        data = (
            _fetch(url, token, witnesses, ca) if url is not None else _read_json(bundle or Path())
        )
        store = TrustStore.from_json(_read_json(trust)) if trust and trust.exists() else None
        granted = None if roots is None else _granted(data, roots)
        report = verify_bundle(
            data,
            tree=MemoryTree(),
            trust=store,
            key=key,
            witnesses=witnesses,
            witness_keys=witness_key or (),
            directory=_read_json(directory) if directory is not None else None,
            granted=granted,
        )
    except BundleError as exc:
        _fail(str(exc), 2)
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)
    if sharing:
        typer.echo("origin_agency,recipient_agency,border_pair,kind,count")
        for c in report.sharing():
            typer.echo(f"{c.origin_agency},{c.recipient_agency},{c.border_pair},{c.kind},{c.count}")
    if trust is not None and report.accepted is not None:
        store = store or TrustStore()
        store.origin = store.origin or str(data["origin"])
        store.ledger_public_key = store.ledger_public_key or report.key
        if witnesses and not store.witness_keys:
            store.witness_keys = report.witness_keys
        if all(c.tree_size != report.accepted.tree_size for c in store.checkpoints):
            store.checkpoints.append(report.accepted)
        _write_private(trust, json.dumps(store.to_json(), indent=2) + "\n")
        typer.echo(f"accepted checkpoint {report.accepted.tree_size} into {trust}")


@ledger_app.command()
def retention(
    url: Annotated[str, typer.Option(help="The node to ask (any node of the deployment).")],
    token: Annotated[
        str | None, typer.Option(help="An auditor's bearer token.", envvar="BLO_TOKEN")
    ] = None,
    ca: Ca = None,
    at: Annotated[
        str | None, typer.Option(help="Overdue as of this RFC 3339 time (default: now).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the node's answer as is.")] = False,
) -> None:
    """Per agreement: nominal blocks erased where, and overdue (docs/retention.md). Exit 1 when
    anything is overdue, 2 on bad input."""
    try:
        report = _get(url, "/v1/ledger/retention", token, {"at": at} if at else None, ca)
    except BundleError as exc:
        _fail(str(exc), 2)
    if as_json:
        typer.echo(json.dumps(report, indent=2, ensure_ascii=False))
    else:
        for line in retention_lines(report):
            typer.echo(line)
    if any(section["overdue"] for section in report["agreements"]):
        raise typer.Exit(1)


def retention_lines(report: dict[str, Any]) -> list[str]:
    """The report as CSV: ``agreement_id,status,alert_id,node,agency,at``."""
    lines = ["agreement_id,status,alert_id,node,agency,at"]
    for section in report["agreements"]:
        agreement = section["agreement_id"]
        for e in section["erased"]:
            lines.append(
                f"{agreement},erased,{e['alert_id']},{e['node']},{e['agency']},{e['erased_at']}"
            )
        for e in section["overdue"]:
            lines.append(
                f"{agreement},overdue,{e['alert_id']},{e['node']},{e['agency']},{e['expired_at']}"
            )
    return lines


def _granted(bundle: Any, roots: Path) -> GrantedKeys:
    """The keys the bundle's statements grant under ``roots`` (``ledger.verify_roots``)."""
    if not isinstance(bundle, dict) or not isinstance(bundle.get("origin"), str):
        raise BundleError("bundle: no origin")
    statements = bundle.get("statements", [])
    if not isinstance(statements, list) or not all(isinstance(s, str) for s in statements):
        raise BundleError("statements: expected a list of signed statements")
    granted = granted_keys(statements, load_pinned_roots(roots), origin=bundle["origin"])
    typer.echo(
        f"{granted.statements} statement(s) verify against {roots}"
        + (f", {granted.refused} refused" if granted.refused else "")
        + f": {len(granted.ledger)} ledger key(s), {len(granted.witnesses)} witness key(s)",
        err=True,
    )
    return granted


def _fail(message: str, code: int) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text("utf-8"))
    except (OSError, ValueError) as exc:
        raise BundleError(f"cannot read {path}: {exc}") from None


def _fetch(url: str, token: str | None, cosigned: int, ca: Path | None) -> Any:
    return _get(url, "/v1/ledger/export", token, {"cosigned": cosigned} if cosigned else None, ca)


def _get(
    url: str, path: str, token: str | None, params: dict[str, Any] | None, ca: Path | None
) -> Any:
    import httpx

    if not token:
        raise BundleError("--url needs --token (an auditor's)")
    try:
        response = httpx.get(
            url.rstrip("/") + path,
            params=params,
            headers={"Authorization": f"Bearer {token}"},
            timeout=60.0,
            verify=tls_verification(ca),
        )
    except httpx.HTTPError as exc:
        raise BundleError(f"cannot fetch {path}: {exc}") from None
    if response.status_code != 200:
        raise BundleError(f"the node answered {response.status_code}: {response.text[:200]}")
    return response.json()


def _write_private(path: Path, text: str) -> None:
    write_private_file(path, text.encode("utf-8"))
