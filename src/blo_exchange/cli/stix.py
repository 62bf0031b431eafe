"""``blo-exchange stix export``: a STIX 2.1 bundle of one alert or a time range, for offline use.

The same mapping as the TAXII server (``interop.stix``), on what an analyst may read: the alerts
come from the node's ``GET /v1/alerts/{id}`` or ``GET /v1/feed`` with the analyst's token, or from
a file saved from either (``--from-file``), so a bundle can be made where no node is reachable.
Ids are derived from the alert ids, so exporting the same alerts twice gives the same bundle.

Exit codes, as the other clients: 0 done, 1 the node refused, 2 bad input, 3 unreachable.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from blo_exchange.domain.ids import parse_time
from blo_exchange.interop.stix import StixMappingError, alert_objects, bundle

__all__ = ["stix_app"]

stix_app = typer.Typer(
    no_args_is_help=True, help="STIX 2.1 bundles of an agency's alerts (docs/stix-mapping.md)."
)

_PAGE = 500


def _fail(message: str, code: int) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def _time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_time(value)
    except ValueError as exc:
        raise _fail(f"{name}: {exc}", 2) from exc


class _Node:
    def __init__(self, url: str, token: str) -> None:
        import httpx

        self._client = httpx.Client(
            base_url=url.rstrip("/"),
            headers={"Authorization": f"Bearer {token.strip()}", "User-Agent": "blo-exchange-cli"},
            timeout=30.0,
        )

    def get(self, path: str, **params: Any) -> Any:
        import httpx

        try:
            response = self._client.get(path, params=params)
        except httpx.HTTPError as exc:
            raise _fail(f"the node could not be reached: {exc}", 3) from exc
        if response.status_code != 200:
            try:
                detail = response.json().get("detail")
            except ValueError:
                detail = None
            raise _fail(f"HTTP {response.status_code}: {detail or response.reason_phrase}", 1)
        return response.json()

    def feed(self) -> Iterator[dict[str, Any]]:
        cursor = 0
        while True:
            page = self.get("/v1/feed", cursor=cursor, limit=_PAGE)
            yield from page["items"]
            if not page["items"]:
                return
            cursor = page["next_cursor"]

    def close(self) -> None:
        self._client.close()


def _items_of(document: Any) -> list[dict[str, Any]]:
    """A saved ``GET /v1/feed`` page, a list of its items, or one ``GET /v1/alerts/{id}``."""
    if isinstance(document, dict) and isinstance(document.get("items"), list):
        return list(document["items"])
    if isinstance(document, list):
        return document
    if isinstance(document, dict) and "header" in document:
        return [document]
    raise _fail("the file is neither a feed page, a list of feed items nor one alert", 2)


def _in_range(item: dict[str, Any], since: datetime | None, until: datetime | None) -> bool:
    try:
        created = parse_time(str(item["header"]["created_at"]))
    except (KeyError, TypeError, ValueError):
        return False
    return (since is None or created >= since) and (until is None or created < until)


@stix_app.command("export")
def export(
    alert: Annotated[str | None, typer.Option(help="One alert id.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Alerts created at or after (RFC 3339).")
    ] = None,
    until: Annotated[str | None, typer.Option(help="Alerts created before (RFC 3339).")] = None,
    url: Annotated[str | None, typer.Option(envvar="BLO_URL", help="The node.")] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="BLO_TOKEN", help="An analyst's token.", show_default=False),
    ] = None,
    from_file: Annotated[
        Path | None, typer.Option(help="Read a saved feed page or alert instead of a node.")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Write here; standard output by default.")] = (
        None
    ),
) -> None:
    """Write one alert (--alert) or the alerts created in [--since, --until) as a STIX bundle."""
    start, end = _time(since, "--since"), _time(until, "--until")
    if alert is not None and (start is not None or end is not None):
        raise _fail("give --alert or a time range, not both", 2)
    if alert is None and start is None and end is None and from_file is None:
        raise _fail("give --alert ID or --since/--until (or --from-file to export a file)", 2)
    if from_file is not None:
        try:
            items = _items_of(json.loads(from_file.read_text(encoding="utf-8")))
        except (OSError, ValueError) as exc:
            raise _fail(f"{from_file}: {exc}", 2) from exc
    elif url is None or token is None:
        raise _fail("give --url and --token (or BLO_URL, BLO_TOKEN), or --from-file", 2)
    else:
        node = _Node(url, token)
        try:
            if alert is not None:
                items = [node.get(f"/v1/alerts/{alert}")]
            else:
                items = [i for i in node.feed() if _in_range(i, start, end)]
        finally:
            node.close()
    if alert is not None:
        items = [i for i in items if i.get("alert_id") == alert]
    elif start is not None or end is not None:
        items = [i for i in items if _in_range(i, start, end)]
    if not items:
        raise _fail("no alert matches", 1)
    # Each alert's objects include what they refer to (its own TLP, not all five: MISP, for
    # one, tags an event with every marking in the bundle).
    objects: list[dict[str, Any]] = []
    try:
        for item in items:
            objects += alert_objects(item)
    except StixMappingError as exc:
        raise _fail(str(exc), 2) from exc
    key = "export/" + ",".join(sorted(str(i.get("alert_id")) for i in items))
    result = bundle(objects, key=key)
    text = json.dumps(result, indent=2, ensure_ascii=False) + "\n"
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text, encoding="utf-8")
        typer.echo(f"{len(items)} alert(s), {len(result['objects'])} objects -> {out}")
