"""``blo-exchange package``: signed offline packages for a crossing with no link
(docs/contracts/packages.md).

Run on a node's host with its settings (``BLO_NODE_ID``, ``BLO_DATABASE_URL``, ``BLO_KEY_DIR``,
``BLO_PINNED_ROOTS_FILE``): ``export`` writes the sealed envelopes for one agency with the
statements and proofs that verify them; ``import`` verifies a package and delivers its alerts
once; ``flush-receipts`` publishes the receipts waiting in the node's outbox (imports' receipts,
and hit receipts the bus did not take at once; a running node does so itself);
``unconfirmed`` lists what the destination has not acknowledged yet.

Exit codes: 0 done, 1 the package was refused (the reason names the member), 2 bad input or
settings, 3 NATS unreachable (flush-receipts).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from blo_exchange.config import load_settings
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.domain.ids import parse_time
from blo_exchange.errors import InvalidPackage

__all__ = ["package_app"]

package_app = typer.Typer(
    no_args_is_help=True, help="Signed offline packages (docs/contracts/packages.md)."
)


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


@package_app.command("export")
def export(
    since: Annotated[str, typer.Option(help="Alerts created at or after (RFC 3339).")],
    to: Annotated[Path, typer.Option("--to", help="The package file to write (0600).")],
    for_agency: Annotated[str, typer.Option("--for", help="The destination agency.")],
    until: Annotated[str | None, typer.Option(help="Alerts created before (RFC 3339).")] = None,
    relay: Annotated[
        bool, typer.Option("--relay", help="Also alerts this node received from other nodes.")
    ] = False,
) -> None:
    """Write the envelopes this node has for --for AGENCY, created in [--since, --until)."""
    from blo_exchange.bootstrap.packages import package_services

    try:
        start = parse_time(since)
        end = None if until is None else parse_time(until)
    except ValueError as exc:
        raise _fail(f"--since/--until: {exc}", 2) from exc

    async def run() -> None:
        async with package_services(load_settings()) as services:
            result = await services.exporter.export(
                for_agency=for_agency, since=start, until=end, relay=relay
            )
        write_private_file(to, result.data)
        typer.echo(
            f"package {result.package_id}: {len(result.alerts)} alert(s), "
            f"{result.statements} statement(s), {result.proofs} ledger proof(s) -> {to}"
        )
        if result.unproven:
            why = f" ({result.ledger_problem})" if result.ledger_problem else ""
            typer.echo(f"{len(result.unproven)} alert(s) without a ledger proof{why}")
        for alert_id, reason in result.skipped:
            typer.echo(f"left out {alert_id}: {reason}", err=True)

    asyncio.run(run())


@package_app.command("unconfirmed")
def unconfirmed(
    since: Annotated[str, typer.Option(help="Alerts created at or after (RFC 3339).")],
    for_agency: Annotated[str, typer.Option("--for", help="The destination agency.")],
    until: Annotated[str | None, typer.Option(help="Alerts created before (RFC 3339).")] = None,
) -> None:
    """List this node's alerts for --for AGENCY that the ledger has no delivery receipt for
    from that agency: a package lost on the way, or a link still down. Export them again."""
    from blo_exchange.bootstrap.packages import package_services

    try:
        start = parse_time(since)
        end = None if until is None else parse_time(until)
    except ValueError as exc:
        raise _fail(f"--since/--until: {exc}", 2) from exc

    async def run() -> tuple[str, ...]:
        async with package_services(load_settings()) as services:
            exporter = services.exporter
            return await exporter.unconfirmed(for_agency=for_agency, since=start, until=end)

    missing = asyncio.run(run())
    for alert_id in missing:
        typer.echo(alert_id)
    typer.echo(f"{len(missing)} alert(s) without a delivery receipt from {for_agency}", err=True)


@package_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The package file.")],
    require_proofs: Annotated[
        bool, typer.Option(help="Refuse a package with an alert the ledger does not prove.")
    ] = False,
    check_only: Annotated[
        bool, typer.Option("--check", help="Verify everything, deliver nothing.")
    ] = False,
) -> None:
    """Verify every member of FILE and deliver its alerts to this node, each once."""
    from blo_exchange.bootstrap.packages import package_services

    try:
        data = file.read_bytes()
    except OSError as exc:
        raise _fail(f"{file}: {exc.strerror}", 2) from exc

    async def run() -> None:
        async with package_services(load_settings()) as services:
            if services.importer is None:
                raise _fail("importing needs BLO_PINNED_ROOTS_FILE (the roots to verify with)", 2)
            if check_only:
                checked = await services.importer.verify(data, require_proofs=require_proofs)
                report = checked.report
            else:
                report = await services.importer.import_package(data, require_proofs=require_proofs)
        typer.echo(
            f"package {report.package_id} from {report.exporter_node}: verified "
            f"({report.proven} ledger proof(s) under checkpoint {report.checkpoint_size}, "
            f"{len(report.unproven)} alert(s) unproven)"
        )
        if not check_only:
            typer.echo(
                f"{len(report.delivered)} delivered, {len(report.duplicates)} duplicate(s), "
                f"{len(report.rejected)} rejected, {report.statements_added} statement(s) added"
            )
            for alert_id, reason in report.rejected:
                typer.echo(f"rejected {alert_id}: {reason}")

    try:
        asyncio.run(run())
    except InvalidPackage as exc:
        raise _fail(str(exc), 1) from exc


@package_app.command("flush-receipts")
def flush_receipts() -> None:
    """Publish the receipts waiting in the node's outbox, now (a running node does it every 2 s)."""
    from blo_exchange.bootstrap.packages import package_services
    from blo_exchange.bus.connection import connect
    from blo_exchange.bus.permissions import inbox_prefix
    from blo_exchange.errors import BusError
    from blo_exchange.services.receipt_queue import ReceiptRelay

    async def run() -> int:
        settings = load_settings()
        try:
            bus = await connect(
                settings.nats_url.get_secret_value(),
                name=f"package-{settings.node_id}",
                credentials=settings.nats_credentials,
                nkey_seed_file=settings.nats_nkey_file,
                inbox_prefix=None
                if settings.nats_nkey_file is None
                else inbox_prefix(settings.node_id),
                tls_ca_file=settings.nats_ca_file,
                timeout=settings.nats_timeout,
            )
        except BusError as exc:
            raise _fail(str(exc), 3) from exc
        try:
            async with package_services(settings) as services:
                return await ReceiptRelay(services.queue, bus).flush()
        finally:
            await bus.close()

    typer.echo(f"{asyncio.run(run())} receipt(s) published")
