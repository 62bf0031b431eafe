"""TAXII 2.1 resources of a node, without HTTP: media types, collection ids, paging.

A collection is a sequence of alerts in the order they were added to the node's inbox, each
alert expanded into its STIX objects (``interop.stix``). A page is ``limit`` consecutive objects
of that sequence; its ``next`` token is the position of the first object not returned: the
alert's (added time, stream sequence) and the object's index within the alert. The token is
opaque to clients and checked on the way back in.

An object shared by several alerts (the agency's identity, a crossing point, a marking, the
extension definitions) is returned with each of them, the same version each time: every page
is complete on its own, which matters more to a poller using ``added_after`` than a few repeated
objects, which STIX consumers merge by id and ``modified``.

Not here: who may read (the route checks the analyst), opening the alerts (``services.feed``).
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final

from blo_exchange.interop.stix_markings import BLO_NAMESPACE

__all__ = [
    "MAX_LIMIT",
    "STIX_MEDIA_TYPE",
    "TAXII_MEDIA_TYPE",
    "AlertObjects",
    "InvalidNextError",
    "Page",
    "Position",
    "collection_id",
    "format_added",
    "manifest_record",
    "paginate",
]

TAXII_MEDIA_TYPE: Final = "application/taxii+json;version=2.1"
STIX_MEDIA_TYPE: Final = "application/stix+json;version=2.1"
MAX_LIMIT: Final = 1000
"""Objects per page at most; a client asking for more gets this many (TAXII 2.1 §3.4)."""


class InvalidNextError(ValueError):
    """A ``next`` token this server did not issue."""


def collection_id(node_id: str, border_pair: str | None) -> str:
    """The collection of one border pair on a node, or (``None``) of the node's whole feed."""
    name = f"taxii/{node_id}/{border_pair or 'feed'}"
    return str(uuid.uuid5(BLO_NAMESPACE, name))


def format_added(value: datetime) -> str:
    """A TAXII timestamp to the microsecond, so ``added_after`` can split any two alerts."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Position:
    """The object at ``index`` of the alert added at ``added`` with stream sequence ``seq``."""

    added: datetime
    seq: int
    index: int

    def token(self) -> str:
        raw = json.dumps([format_added(self.added), self.seq, self.index]).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def parse(cls, token: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            added, seq, index = json.loads(raw)
            position = cls(
                datetime.strptime(added, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
                int(seq),
                int(index),
            )
        except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as exc:
            raise InvalidNextError("not a next token of this server") from exc
        if position.seq < 0 or position.index < 0 or len(token) > 200:
            raise InvalidNextError("not a next token of this server")
        return position


@dataclass(frozen=True)
class AlertObjects:
    added: datetime
    seq: int
    objects: Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Page:
    objects: list[tuple[datetime, dict[str, Any]]]
    """(date added, object), in collection order"""
    more: bool
    next: Position | None


def paginate(
    alerts: Sequence[AlertObjects], *, start: Position | None, limit: int, exhausted: bool
) -> Page:
    """The page of ``limit`` objects from ``start`` over ``alerts`` (which begin at ``start``'s
    alert when there is one). ``exhausted``: no alert comes after the last of ``alerts``."""
    taken: list[tuple[datetime, dict[str, Any]]] = []
    for n, alert in enumerate(alerts):
        first = 0
        if n == 0 and start is not None and (alert.added, alert.seq) == (start.added, start.seq):
            first = start.index
        for index in range(first, len(alert.objects)):
            if len(taken) == limit:
                return Page(taken, True, Position(alert.added, alert.seq, index))
            taken.append((alert.added, alert.objects[index]))
    if exhausted or not alerts:
        return Page(taken, False, None)
    last = alerts[-1]
    return Page(taken, True, Position(last.added, last.seq, len(last.objects)))


def manifest_record(added: datetime, obj: dict[str, Any]) -> dict[str, Any]:
    """A manifest entry: the version is ``modified``, else ``created``, else the date added."""
    return {
        "id": obj["id"],
        "date_added": format_added(added),
        "version": obj.get("modified") or obj.get("created") or format_added(added),
        "media_type": STIX_MEDIA_TYPE,
    }
