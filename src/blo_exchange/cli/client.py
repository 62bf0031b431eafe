"""``blo-exchange alerts send`` and ``blo-exchange feed tail``: a terminal's and an analyst's view
of a node over HTTPS, for people at a shell rather than a browser.

Thin clients of the JSON API: they check what they can locally (a malformed alert file is named
field by field before anything is sent), then report the node's answer. The token comes from
``--token`` or ``BLO_TOKEN`` and is never printed. Exit codes: 0 done, 1 the node refused,
2 bad input, 3 the node could not be reached.
"""

from __future__ import annotations

import hashlib
import json
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from pydantic import ValidationError

from blo_exchange.crypto.tls import client_context
from blo_exchange.domain.alerts import parse_alert_submission

if TYPE_CHECKING:
    import httpx

__all__ = ["Ca", "Cert", "Key", "client_app", "tls_verification"]

client_app = typer.Typer(no_args_is_help=True, add_completion=False)
alerts_app = typer.Typer(no_args_is_help=True, help="Send alerts to a node (a terminal's role).")
feed_app = typer.Typer(no_args_is_help=True, help="Follow an agency's feed (an analyst's role).")
client_app.add_typer(alerts_app, name="alerts")
client_app.add_typer(feed_app, name="feed")

Url = Annotated[str, typer.Option(envvar="BLO_URL", help="The node, e.g. https://blo.example.")]
Token = Annotated[
    str, typer.Option(envvar="BLO_TOKEN", help="Bearer token (or BLO_TOKEN).", show_default=False)
]
Ca = Annotated[
    Path | None,
    typer.Option(
        envvar="BLO_CA",
        help="CA certificate (PEM) the node's is checked against; else the system's.",
    ),
]


Cert = Annotated[
    Path | None,
    typer.Option(
        "--cert",
        envvar="BLO_CLIENT_CERT",
        help="This device's certificate (PEM), presented to the node with the token.",
    ),
]
Key = Annotated[
    Path | None,
    typer.Option(
        "--cert-key",  # not --key: `terminal send --key` is the Idempotency-Key
        envvar="BLO_CLIENT_KEY",
        help="The device certificate's private key (PEM); default: in the --cert file.",
    ),
]


def tls_verification(
    ca: Path | None, cert: Path | None = None, key: Path | None = None
) -> ssl.SSLContext | bool:
    """What an HTTPS client checks the node with (``ca``, or the system's CAs), and the device
    certificate it presents (``cert``, ``key``) when the token is bound to one."""
    if ca is None and cert is None:
        return True
    if cert is None and key is not None:
        raise typer.BadParameter("--cert-key needs --cert")
    try:
        return client_context(ca, cert_file=cert, key_file=key)
    except (OSError, ssl.SSLError) as exc:
        raise typer.BadParameter(f"cannot use the CA or device certificate: {exc}") from exc


TLP_COLOURS: dict[str, tuple[str, bool]] = {
    "RED": (typer.colors.BRIGHT_RED, True),
    "AMBER+STRICT": (typer.colors.YELLOW, True),
    "AMBER": (typer.colors.YELLOW, False),
    "GREEN": (typer.colors.BRIGHT_GREEN, False),
    "CLEAR": (typer.colors.WHITE, False),
}


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _headers(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token.strip()}", "User-Agent": "blo-exchange-cli"}


_TRANSIENT = frozenset({429, 503})


def _retry_after(response: httpx.Response, default: float = 2.0) -> float:
    """The Retry-After seconds of a 429 or 503, within reason."""
    try:
        return min(max(float(response.headers.get("retry-after", default)), 0.5), 60.0)
    except ValueError:
        return default


def _refusal(response: httpx.Response) -> typer.Exit:
    """The node said no: its problem+json detail and, for a 422, every field at fault."""
    try:
        body = response.json()
    except ValueError:
        body = {}
    detail = body.get("detail") if isinstance(body, dict) else None
    if response.status_code == 401:
        if detail and "certificate" in str(detail):  # a device certificate missing or wrong
            return _fail(f"the node did not accept the credential: {detail} (--cert, --key)", 1)
        return _fail("the node did not accept the token (check --token / BLO_TOKEN)", 1)
    if response.status_code == 403:
        return _fail(f"not allowed: {detail or 'this token may not do that here'}", 1)
    for error in body.get("errors", []) if isinstance(body, dict) else []:
        typer.echo(f"  {error.get('field')}: {error.get('message')}", err=True)
    return _fail(f"HTTP {response.status_code}: {detail or response.reason_phrase}", 1)


@alerts_app.command("send")
def send(
    file: Annotated[Path, typer.Argument(help="The alert as JSON ('-' for standard input).")],
    url: Url,
    token: Token,
    idempotency_key: Annotated[
        str | None,
        typer.Option(help="Default: derived from the file's bytes, so a resend is a replay."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the node.")] = 30.0,
    ca: Ca = None,
    cert: Cert = None,
    cert_key: Key = None,
) -> None:
    """Send one alert; print its id and recipients."""
    import httpx

    try:
        raw = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as exc:
        raise _fail(f"cannot read {file}: {exc.strerror}", 2) from exc
    try:
        document = json.loads(raw)
        parse_alert_submission(document)
    except ValueError as exc:
        if isinstance(exc, ValidationError):
            for error in exc.errors():
                field = ".".join(str(p) for p in error["loc"]) or "alert"
                typer.echo(f"  {field}: {error['msg']}", err=True)
            raise _fail(f"{file} is not a valid alert", 2) from exc
        raise _fail(f"{file} is not JSON: {exc}", 2) from exc
    key = idempotency_key or "cli-" + hashlib.sha256(raw).hexdigest()[:40]
    try:
        response = httpx.post(
            url.rstrip("/") + "/v1/alerts",
            content=raw,
            headers=_headers(token) | {"Idempotency-Key": key, "Content-Type": "application/json"},
            timeout=timeout,
            verify=tls_verification(ca, cert, cert_key),
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach {url}: {type(exc).__name__}", 3) from exc
    if response.status_code != 202:
        raise _refusal(response)
    accepted = response.json()
    replayed = (
        " (already sent; this is the first answer)"
        if response.headers.get("Idempotent-Replayed")
        else ""
    )
    typer.echo(f"alert_id: {accepted['alert_id']}{replayed}")
    typer.echo(f"recipients: {', '.join(accepted['recipients'])}")
    typer.echo(f"agreements: {', '.join(accepted['agreement_ids'])}")


def _events(lines: Iterator[str]) -> Iterator[tuple[str | None, str, str]]:
    """(id, event, data) of each Server-Sent Event in ``lines``."""
    event_id: str | None = None
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield event_id, name, "\n".join(data)
            name, data = "message", list[str]()
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "id":
            event_id = value
        elif field == "event":
            name = value
        elif field == "data":
            data.append(value)


def format_alert(alert: dict[str, Any], *, colour: bool) -> str:
    """One line per alert: TLP, time, pair, kind, crossing point, origin, what."""
    header = alert["header"]
    case = alert.get("case", {})
    if header["kind"] == "seizure":
        what = "; ".join(
            f"{i['quantity']} {i['unit']} {i['substance']}" for i in case.get("items", [])
        )
    else:
        what = str(case.get("subject") or case.get("outcome") or "")
    tlp = f"TLP:{header['tlp']}"
    if colour:
        fg, bold = TLP_COLOURS.get(header["tlp"], (typer.colors.WHITE, False))
        tlp = typer.style(tlp, fg=fg, bg=typer.colors.BLACK, bold=bold)
    return (
        f"{tlp} {header['created_at']} {header['border_pair']} {header['kind']} "
        f"{header['crossing_point']} from {header['origin_agency']}: {what} "
        f"[{alert['alert_id']}]"
    )


@feed_app.command("tail")
def tail(
    url: Url,
    token: Token,
    cursor: Annotated[int, typer.Option(min=0, help="Start after this feed position.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON alert per line.")] = False,
    colour: Annotated[bool, typer.Option("--colour/--no-colour")] = sys.stdout.isatty(),
    ca: Ca = None,
    cert: Cert = None,
    cert_key: Key = None,
) -> None:
    """Print the alerts addressed to the token's agency as they arrive (Ctrl-C stops)."""
    import httpx

    last = str(cursor)
    failures = 0
    while True:
        try:
            with httpx.stream(
                "GET",
                url.rstrip("/") + "/v1/feed/stream",
                headers=_headers(token) | {"Last-Event-ID": last, "Accept": "text/event-stream"},
                timeout=httpx.Timeout(10.0, read=60.0),
                verify=tls_verification(ca, cert, cert_key),
            ) as response:
                if response.status_code in _TRANSIENT:
                    # The node is up but Postgres or NATS is not (or we are too fast): wait as
                    # told and resume from the same position; nothing stored is skipped.
                    response.read()
                    pause = _retry_after(response)
                    typer.secho(
                        f"node unavailable (HTTP {response.status_code}); retrying in {pause:g} s",
                        err=True,
                        dim=True,
                    )
                    time.sleep(pause)
                    continue
                if response.status_code != 200:
                    response.read()
                    raise _refusal(response)
                failures = 0
                for event_id, name, data in _events(response.iter_lines()):
                    if name != "alert":
                        continue
                    last = event_id or last
                    alert = json.loads(data)
                    if as_json:
                        typer.echo(json.dumps(alert, ensure_ascii=False))
                    else:
                        typer.echo(format_alert(alert, colour=colour))
        except KeyboardInterrupt:
            raise typer.Exit(0) from None
        except httpx.HTTPError as exc:
            failures += 1
            if failures >= 5:
                raise _fail(f"cannot reach {url}: {type(exc).__name__}", 3) from exc
            typer.secho(f"connection lost ({type(exc).__name__}); reconnecting", err=True, dim=True)
            time.sleep(min(2.0 * failures, 10.0))
