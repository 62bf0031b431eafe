"""``blo-exchange terminal``: an officer's terminal that keeps alerts until a node took them.

``send`` queues alert files in the local outbox and tries to deliver them; ``flush`` retries what
is still pending (after the link or the terminal came back); ``status`` lists the queue. The
logic is in :mod:`blo_exchange.cli.outbox`.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from blo_exchange.cli.client import Ca, Cert, Key, tls_verification
from blo_exchange.cli.outbox import FlushReport, Outbox, flush

__all__ = ["terminal_app"]

terminal_app = typer.Typer(
    no_args_is_help=True, help="A terminal's durable outbox of alerts (survives link loss)."
)

DEFAULT_OUTBOX = Path.home() / ".local" / "share" / "blo-exchange" / "outbox.sqlite3"

OutboxPath = Annotated[
    Path, typer.Option("--outbox", envvar="BLO_OUTBOX", help="The queue's SQLite file.")
]
NodeUrl = Annotated[str, typer.Option("--url", envvar="BLO_TERMINAL_URL", help="The node's URL.")]
Token = Annotated[
    str, typer.Option("--token", envvar="BLO_TERMINAL_TOKEN", help="The terminal's bearer token.")
]
RetryFor = Annotated[
    float, typer.Option(min=0, help="Keep retrying pending alerts this many seconds.")
]

EXIT_PENDING = 3
EXIT_REFUSED = 4


@terminal_app.command("send")
def send(
    files: Annotated[list[Path], typer.Argument(help="Alert JSON files (an object or a list).")],
    url: NodeUrl,
    token: Token,
    outbox: OutboxPath = DEFAULT_OUTBOX,
    key: Annotated[
        str | None, typer.Option(help="Idempotency-Key (one file, one alert); default: digest.")
    ] = None,
    retry_for: RetryFor = 10.0,
    ca: Ca = None,
    cert: Cert = None,
    cert_key: Key = None,
) -> None:
    """Queue the alerts (on disk, before anything is sent), then flush the queue."""
    bodies: list[dict[str, Any]] = []
    for file in files:
        loaded = json.loads(file.read_text(encoding="utf-8"))
        bodies.extend(loaded if isinstance(loaded, list) else [loaded])
    if key is not None and len(bodies) != 1:
        raise typer.BadParameter("--key needs exactly one alert")
    with Outbox(outbox) as queue:
        for body in bodies:
            queued_key, new = queue.enqueue(body, key)
            typer.echo(f"{'queued' if new else 'already queued'} {queued_key}")
        verify = tls_verification(ca, cert, cert_key)
        _finish(asyncio.run(flush(queue, url, token, retry_for=retry_for, verify=verify)), queue)


@terminal_app.command("flush")
def flush_command(
    url: NodeUrl,
    token: Token,
    outbox: OutboxPath = DEFAULT_OUTBOX,
    retry_for: RetryFor = 10.0,
    ca: Ca = None,
    cert: Cert = None,
    cert_key: Key = None,
) -> None:
    """Retry every pending alert."""
    verify = tls_verification(ca, cert, cert_key)
    with Outbox(outbox) as queue:
        _finish(asyncio.run(flush(queue, url, token, retry_for=retry_for, verify=verify)), queue)


@terminal_app.command("status")
def status(
    outbox: OutboxPath = DEFAULT_OUTBOX,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """List the queue: each alert's key, state, attempts and the node's answer."""
    with Outbox(outbox) as queue:
        for item in queue.items():
            answer = item.answer or {}
            if as_json:
                typer.echo(
                    json.dumps(
                        {
                            "key": item.key,
                            "state": item.state,
                            "attempts": item.attempts,
                            "status": item.status,
                            "answer": answer,
                            "enqueued_at": item.enqueued_at,
                        }
                    )
                )
                continue
            detail = answer.get("alert_id") or answer.get("detail") or ""
            typer.echo(f"{item.key}  {item.state:<8} {item.attempts:>3}  {detail}")


def _finish(report: FlushReport, queue: Outbox) -> None:
    typer.echo(f"accepted {report.accepted}, refused {report.refused}, pending {report.pending}")
    for item in queue.items("refused"):
        typer.echo(f"refused {item.key}: {item.status} {(item.answer or {}).get('detail')}")
    if report.pending:
        typer.echo(f"still pending (last error: {report.last_error}); run `terminal flush`")
        raise typer.Exit(EXIT_PENDING)
    if report.refused:
        raise typer.Exit(EXIT_REFUSED)
