"""A lookout check at a crossing: does this plate, document, name, phone or company match an
active risk alert this node's agency received? A hit shows the alert to the officer and sends its
originator a signed ``hit`` receipt (``services.hits``).

Everything is read from the node's own database, so a check works while the hub (or NATS) is
unreachable; only the receipt waits for the bus, in the outbox.

The steps, in this order:

1. the caller is a terminal of this node (an officer at one of its crossings);
2. the crossing point is one of the node's: the one given, or the node's only one;
3. the value becomes match keys (``domain.transliteration``); none is a refusal;
4. the index, brought up to date, names candidates: risk alerts for this agency, not expired and
   not superseded by a later alert of the same origin agency;
5. each candidate is verified and opened again from the sealed inbox, and is a hit only if it is
   a risk alert, its opened ``valid_until`` has not passed, and its opened content matches: the
   index is a hint, the signed alert decides;
6. each hit is signed as a ``hit`` receipt, kept, and published.

Not checked: that the officer is really at that crossing point (the terminal says so; the node
vouches for its own terminals, and the receipt names the principal). Misses leave no record.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.ids import format_time, parse_time
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.errors import Forbidden, InvalidEnvelope, PolicyError
from blo_exchange.services.hits import HitReceipts
from blo_exchange.services.ports import Directory, Inbox, InboxItem
from blo_exchange.services.search import query_keys
from blo_exchange.services.search_index import SearchIndex, matches
from blo_exchange.services.signed import SignedMessages

__all__ = ["MAX_HITS", "Hit", "Lookout", "LookoutResult"]

MAX_HITS: Final = 20


@dataclass(frozen=True)
class Hit:
    alert: dict[str, Any]
    """``{alert_id, header, case, nominal?}``, opened from the verified envelope."""
    receipt_id: str
    published: bool


@dataclass(frozen=True)
class LookoutResult:
    field: FieldKind
    crossing_point: str
    checked_at: datetime
    hits: list[Hit]

    def to_json(self) -> dict[str, Any]:
        return {
            "field": self.field.value,
            "crossing_point": self.crossing_point,
            "checked_at": format_time(self.checked_at),
            "hits": [
                {
                    "alert": hit.alert,
                    "receipt_id": hit.receipt_id,
                    "receipt": "published" if hit.published else "queued",
                }
                for hit in self.hits
            ],
        }


class Lookout:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        inbox: Inbox,
        index: SearchIndex,
        hits: HitReceipts,
        clock: Callable[[], datetime],
    ) -> None:
        self._node = node
        self._kem_keys = kem_keys
        self._signed = SignedMessages(directory, clock=clock)
        self._inbox = inbox
        self._index = index
        self._hits = hits
        self._clock = clock
        self.checks = 0
        self.hits = 0

    @property
    def crossing_points(self) -> tuple[str, ...]:
        return tuple(self._node.crossing_points)

    def crossing_point(self, principal: Principal, requested: str | None) -> str:
        """Steps 1 and 2."""
        if principal.role is not Role.TERMINAL or principal.node_id != self._node.id:
            raise Forbidden("only a terminal of this node may run a lookout check here")
        points = self._node.crossing_points
        if requested is None or requested == "":
            if len(points) != 1:
                raise PolicyError("crossing_point is required: " + ", ".join(points))
            return points[0]
        if points and requested not in points:
            raise PolicyError(
                f"crossing point {requested} is not one of this node's: " + ", ".join(points)
            )
        return requested

    async def check(
        self,
        principal: Principal,
        field: FieldKind,
        value: str,
        *,
        crossing_point: str | None = None,
    ) -> LookoutResult:
        point = self.crossing_point(principal, crossing_point)  # (1), (2)
        keys = query_keys(field, value)  # (3)
        self.checks += 1
        now = self._clock()
        await self._index.catch_up()  # (4)
        candidates = await self._index.find(field, keys, active_risk_at=now, limit=MAX_HITS)
        hits = []
        for alert_id in candidates:
            opened = await self._open_active(alert_id, now)  # (5)
            if opened is None:
                continue
            row, item = opened
            if not matches(item["case"], item.get("nominal"), field, keys):
                continue
            sent = await self._hits.record(  # (6)
                row=row,
                header=item["header"],
                crossing_point=point,
                principal_id=principal.id,
                matched=field,
                checked_at=now,
            )
            hits.append(Hit(alert=item, receipt_id=sent.receipt_id, published=sent.published))
            self.hits += 1
        return LookoutResult(field=field, crossing_point=point, checked_at=now, hits=hits)

    async def _open_active(
        self, alert_id: str, now: datetime
    ) -> tuple[InboxItem, dict[str, Any]] | None:
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or row.agency_id != self._node.agency_id or row.kind != "risk":
            return None
        try:
            opened = (await self._signed.open_stored(row, kem_keys=self._kem_keys)).opened
        except InvalidEnvelope:
            return None
        case = json.loads(opened.parts["case"])
        valid_until = case.get("valid_until")
        if isinstance(valid_until, str) and parse_time(valid_until) <= now:
            return None
        alert: dict[str, Any] = {"alert_id": alert_id, "header": opened.header, "case": case}
        if "nominal" in opened.parts:
            alert["nominal"] = json.loads(opened.parts["nominal"])
        return row, alert
