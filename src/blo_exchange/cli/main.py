"""``blo-exchange``: the command line. Thin: each command parses, calls into the package, and
turns errors into a message on stderr and a non-zero exit code.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from blo_exchange.cli.agency import agency_app, agreement_app, statement_app
from blo_exchange.cli.client import client_app
from blo_exchange.cli.db import db_app
from blo_exchange.cli.directory import directory_app
from blo_exchange.cli.ledger import ledger_app
from blo_exchange.cli.lookout import lookout_app
from blo_exchange.cli.nats import nats_app
from blo_exchange.cli.package import package_app
from blo_exchange.cli.stix import stix_app
from blo_exchange.cli.terminal import terminal_app
from blo_exchange.config import Settings, load_settings
from blo_exchange.errors import BloExchangeError

__all__ = ["app", "main", "server_options"]

app = typer.Typer(
    no_args_is_help=True, add_completion=False, help=__doc__, pretty_exceptions_enable=False
)
keys_app = typer.Typer(no_args_is_help=True, help="A node's private keys.")
principals_app = typer.Typer(no_args_is_help=True, help="Credentials (bearer tokens).")
app.add_typer(keys_app, name="keys")
app.add_typer(principals_app, name="principals")
app.add_typer(ledger_app, name="ledger")
app.add_typer(directory_app, name="directory")
app.add_typer(agency_app, name="agency")
app.add_typer(agreement_app, name="agreement")
app.add_typer(statement_app, name="statement")
app.add_typer(client_app)  # alerts send, feed tail (blo_exchange.cli.client)
app.add_typer(nats_app, name="nats")
app.add_typer(terminal_app, name="terminal")
app.add_typer(stix_app, name="stix")
app.add_typer(package_app, name="package")
app.add_typer(lookout_app, name="lookout")
app.add_typer(db_app, name="db")


def _configure_logging(level: str = "INFO") -> None:
    from blo_exchange.logs import configure_logging

    configure_logging(level, json_lines=load_settings().log_json)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Overrides BLO_HTTP_HOST.")] = None,
    port: Annotated[int | None, typer.Option(help="Overrides BLO_HTTP_PORT.")] = None,
) -> None:
    """Run this node's HTTPS API and its delivery consumer (settings from BLO_* variables)."""
    import uvicorn

    from blo_exchange.bootstrap.app import create_app
    from blo_exchange.bootstrap.heap import freeze_heap, map_large_buffers

    map_large_buffers()  # a large buffer freed goes back to the system (bootstrap.heap)
    _configure_logging()
    settings = load_settings()
    node_app = create_app(settings)
    freeze_heap()  # the loop no longer stands still while a collection walks start-up's objects
    uvicorn.run(
        node_app,
        host=host or settings.http_host,
        port=port or settings.http_port,
        **server_options(settings),
    )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's options for a node: its own TLS (asking for device certificates when
    ``BLO_CLIENT_CA_FILE`` is set), read deadlines for slow clients (``api.slow_clients``), the
    verified client certificate in each request's scope (``api.client_certificates``), and
    nothing believed from proxy headers.

    ``proxy_headers=False``: uvicorn would otherwise take the client's address from
    X-Forwarded-For of any local peer, and the trusted-proxy check of a forwarded client
    certificate would compare against an address the caller chose.
    """
    from blo_exchange.api.client_certificates import PeerCertificateProtocol
    from blo_exchange.api.slow_clients import guarded_protocol

    options: dict[str, Any] = {
        "http": guarded_protocol(
            header_seconds=settings.header_timeout,
            body_idle_seconds=settings.body_idle_timeout,
            mixins=(PeerCertificateProtocol,),  # a verified client certificate in the scope
        ),
        "log_level": "warning",
        "access_log": False,
        "timeout_graceful_shutdown": 10,
        "proxy_headers": False,
        "server_header": False,
        "timeout_keep_alive": 5,
    }
    if settings.tls_cert_file is not None and settings.tls_key_file is not None:
        from blo_exchange.crypto.tls import server_context

        cert, key, client_ca = (
            settings.tls_cert_file,
            settings.tls_key_file,
            settings.client_ca_file,
        )
        options["ssl_certfile"] = str(cert)  # uvicorn's marker that it serves TLS
        options["ssl_context_factory"] = lambda _config, _default: server_context(
            cert, key, client_ca_file=client_ca
        )
    elif settings.client_ca_file is not None:
        raise _fail_config("BLO_CLIENT_CA_FILE needs the node's own TLS (BLO_TLS_CERT_FILE)")
    elif not settings.allow_plain_http:
        raise _fail_config(
            "set BLO_TLS_CERT_FILE and BLO_TLS_KEY_FILE (nodes serve HTTPS), or "
            "BLO_ALLOW_PLAIN_HTTP=true behind a TLS-terminating proxy on loopback"
        )
    return options


def _fail_config(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


@app.command("ledger-writer")
def ledger_writer() -> None:
    """Run the ledger writer alone: alerts and receipts from NATS into the Postgres ledger."""
    from blo_exchange.bootstrap.heap import freeze_heap, map_large_buffers
    from blo_exchange.bootstrap.ledger_writer import run_standalone

    map_large_buffers()
    _configure_logging()
    settings = load_settings()
    freeze_heap()
    asyncio.run(run_standalone(settings))


@app.command()
def migrate(
    database_url: Annotated[
        str | None, typer.Option(envvar="BLO_DATABASE_URL", help="Postgres URL.")
    ] = None,
) -> None:
    """Bring the database schema up to date."""
    from blo_exchange.db.engine import migrate as run_migrations

    url = database_url or load_settings().database_url.get_secret_value()
    asyncio.run(run_migrations(url))
    typer.echo("database is up to date")


@app.command()
def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its data.")] = Path(".blo"),
    simulate: Annotated[
        bool, typer.Option("--simulate", help="Keep posting realistic alerts.")
    ] = False,
    base_port: Annotated[int, typer.Option(help="First node's HTTP port (0: any free).")] = 0,
) -> None:
    """Start embedded NATS and Postgres, seed the demo directory, run four nodes and the ledger
    writer, print their URLs. Ctrl-C stops everything; data stays in DATA_DIR."""
    from blo_exchange.demo.supervisor import run_demo

    _configure_logging("WARNING")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_demo(data_dir.resolve(), simulate=simulate, base_port=base_port))


@keys_app.command("init")
def keys_init(
    key_dir: Annotated[Path, typer.Option(envvar="BLO_KEY_DIR")],
    agency_key: Annotated[
        Path | None, typer.Option(help="The agency's existing HPKE key file to install.")
    ] = None,
    suite: Annotated[str, typer.Option()] = "MLKEM768-X25519/HKDF-SHA256/AES-256-GCM",
) -> None:
    """Create this node's signing key (and a new agency key unless one is given). Prints the
    public keys to register in the directory."""
    from blo_exchange.crypto.keyfiles import create_node_keys
    from blo_exchange.crypto.keys import HpkeSuite, load_kem_key, public_key_record

    existing = None if agency_key is None else load_kem_key(agency_key)
    keys = create_node_keys(key_dir, agency_key=existing, suite=HpkeSuite(suite))
    records = [public_key_record(keys.signing)] + [public_key_record(k) for k in keys.kem.values()]
    typer.echo(json.dumps(records, indent=2))


@keys_app.command("witness")
def keys_witness(key_dir: Annotated[Path, typer.Option(envvar="BLO_KEY_DIR")]) -> None:
    """This node's witness key (``witness.key``, created if missing): prints its public record,
    for the agency's root to grant (``agency sign-key --owner-kind witness``)."""
    _print_key_record(key_dir / "witness.key")


@keys_app.command("ledger")
def keys_ledger(
    key_file: Annotated[Path, typer.Option(envvar="BLO_LEDGER_KEY_FILE", help="ledger.key")],
) -> None:
    """The ledger writer's checkpoint key (created if missing): prints its public record, for
    every agency's root to co-sign (``agency propose-ledger-key``, ``sign-ledger-key``)."""
    _print_key_record(key_file)


def _print_key_record(path: Path) -> None:
    from blo_exchange.crypto.keys import public_key_record
    from blo_exchange.ledger.checkpoints import load_or_create_ledger_key

    typer.echo(json.dumps(public_key_record(load_or_create_ledger_key(path))))


@principals_app.command("create")
def principals_create(
    role: Annotated[str, typer.Option(help="terminal | analyst | auditor | admin")],
    label: Annotated[str, typer.Option()],
    node: Annotated[str | None, typer.Option(help="Node of a terminal.")] = None,
    agency: Annotated[str | None, typer.Option(help="Agency of an analyst.")] = None,
    expires_days: Annotated[int | None, typer.Option(min=1)] = None,
    cert: Annotated[
        Path | None,
        typer.Option(help="A client certificate (PEM or DER) instead of a token, for mTLS."),
    ] = None,
    device_cert: Annotated[
        Path | None,
        typer.Option(help="A device certificate (PEM or DER) the token is bound to: both needed."),
    ] = None,
) -> None:
    """Create a credential. The token is printed once and stored only as a hash; with --cert,
    the certificate's SHA-256 is the credential (presented in the TLS handshake); with
    --device-cert, the token works only together with that certificate."""
    from blo_exchange.cli.admin import create_principal

    if cert is not None and device_cert is not None:
        raise typer.BadParameter("--cert (a certificate, no token) or --device-cert, not both")
    fingerprint = None if cert is None else _fingerprint(cert)
    token = asyncio.run(
        create_principal(
            load_settings(),
            role=role,
            label=label,
            node_id=node,
            agency_id=agency,
            expires_days=expires_days,
            certificate_fingerprint=fingerprint,
            device_certificate=None if device_cert is None else _fingerprint(device_cert),
        )
    )
    typer.echo(token if fingerprint is None else f"certificate sha256 {fingerprint} registered")


@principals_app.command("bind-cert")
def principals_bind_cert(
    principal_id: str,
    cert: Annotated[
        Path | None, typer.Argument(help="The device certificate (PEM or DER); none: unbind.")
    ] = None,
) -> None:
    """Bind a principal's token to a device certificate: from then on the token alone is
    refused, and it works only presented with that certificate (within the directory cache's
    few seconds)."""
    from blo_exchange.cli.admin import with_directory

    fingerprint = None if cert is None else _fingerprint(cert)
    asyncio.run(
        with_directory(
            load_settings(), lambda d: d.bind_device_certificate(principal_id, fingerprint)
        )
    )
    typer.echo(
        f"principal {principal_id} unbound"
        if fingerprint is None
        else f"principal {principal_id} bound to certificate sha256 {fingerprint}"
    )


def _fingerprint(cert: Path) -> str:
    from blo_exchange.crypto.certs import certificate_sha256

    try:
        return certificate_sha256(cert.read_bytes())
    except (OSError, ValueError) as exc:
        raise typer.BadParameter(f"{cert}: {exc}") from exc


def main() -> None:
    try:
        app()
    except BloExchangeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise SystemExit(2) from exc
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "input"
            typer.echo(f"error: {field}: {error['msg']}", err=True)
        raise SystemExit(2) from exc
