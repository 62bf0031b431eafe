"""``blo-exchange lookout check``: an officer's lookout check from a shell (``POST /v1/lookout``).

Prints each active risk alert the value matches, and whether its originator has been told (the
signed ``hit`` receipt is ``published``, or ``queued`` until the node's bus answers again). The
value is sent to the node only, never printed back or logged. Exit codes as ``alerts send``:
0 checked (with or without hits), 1 the node refused, 3 the node could not be reached.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from blo_exchange.cli.client import Ca, Token, Url, format_alert, tls_verification
from blo_exchange.cli.client import _fail as fail
from blo_exchange.cli.client import _headers as headers
from blo_exchange.cli.client import _refusal as refusal
from blo_exchange.domain.transliteration import FieldKind

__all__ = ["lookout_app"]

lookout_app = typer.Typer(
    no_args_is_help=True, help="Check a plate, document or name against active risk alerts."
)


@lookout_app.command("check")
def check(
    value: Annotated[str, typer.Argument(help="The plate, number or name, in any script.")],
    url: Url,
    token: Token,
    field: Annotated[FieldKind, typer.Option(help="What the value is.")] = FieldKind.PLATE,
    crossing_point: Annotated[
        str | None, typer.Option(help="Where you are; default: the node's only crossing point.")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The node's answer as JSON.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the node.")] = 30.0,
    ca: Ca = None,
) -> None:
    """Check VALUE; print every active risk alert it matches."""
    import httpx

    body: dict[str, str] = {"field": field.value, "value": value}
    if crossing_point:
        body["crossing_point"] = crossing_point
    try:
        response = httpx.post(
            url.rstrip("/") + "/v1/lookout",
            json=body,
            headers=headers(token),
            timeout=timeout,
            verify=tls_verification(ca),
        )
    except httpx.HTTPError as exc:
        raise fail(f"cannot reach {url}: {type(exc).__name__}", 3) from exc
    if response.status_code != 200:
        raise refusal(response)
    result = response.json()
    if as_json:
        typer.echo(json.dumps(result, ensure_ascii=False))
        return
    hits = result["hits"]
    if not hits:
        typer.echo(f"no active risk alert matches ({result['crossing_point']})")
        return
    typer.secho(f"{len(hits)} risk alert(s) match at {result['crossing_point']}:", bold=True)
    for hit in hits:
        alert = hit["alert"]
        typer.echo(format_alert(alert, colour=False))
        action = alert["case"].get("recommended_action")
        if action:
            typer.echo(f"  recommended: {action}")
        told = "told" if hit["receipt"] == "published" else "will be told when the bus is back"
        typer.echo(f"  originator {alert['header']['origin_agency']} {told}")
