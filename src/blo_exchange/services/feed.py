"""Reading alerts: an analyst's feed and single alerts, opened on demand from the sealed inbox.

Every read verifies the stored envelope again before opening it, so a row altered in the database
is refused rather than shown. Who may read is decided here: a terminal of the origin agency on
this node, or an analyst of a recipient agency (which is this node's agency); anyone else gets
the same NotFound as for an alert that does not exist.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.errors import Forbidden, InvalidEnvelope, NotFound
from blo_exchange.services.ports import Directory, Inbox, InboxItem

__all__ = ["FeedPage", "FeedService"]


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_cursor: int


class FeedService:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        inbox: Inbox,
    ) -> None:
        self._node = node
        self._kem_keys = kem_keys
        self._directory = directory
        self._inbox = inbox
        self._arrived = asyncio.Condition()

    def require_analyst(self, principal: Principal) -> None:
        if principal.role is not Role.ANALYST or principal.agency_id != self._node.agency_id:
            raise Forbidden("only an analyst of this node's agency may read its feed")

    async def notify(self) -> None:
        """Called by the delivery consumer after a commit: wakes the live feeds."""
        async with self._arrived:
            self._arrived.notify_all()

    async def wait(self, timeout: float) -> None:
        async with self._arrived:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), timeout)

    async def page(self, principal: Principal, *, cursor: int, limit: int) -> FeedPage:
        self.require_analyst(principal)
        rows = await self._inbox.page(
            self._node.id, self._node.agency_id, after_seq=cursor, limit=limit
        )
        items = [await self._open(row) for row in rows]
        next_cursor = rows[-1].stream_seq if rows else cursor
        return FeedPage(items=items, next_cursor=next_cursor)

    async def get(self, principal: Principal, alert_id: str) -> dict[str, Any]:
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or not self._may_read(principal, row):
            raise NotFound("no such alert")
        return await self._open(row)

    def _may_read(self, principal: Principal, row: InboxItem) -> bool:
        if principal.role is Role.TERMINAL:
            return principal.node_id == self._node.id and row.origin_agency == principal.agency_id
        if principal.role is Role.ANALYST:
            return principal.agency_id == row.agency_id
        return False

    async def _open(self, row: InboxItem) -> dict[str, Any]:
        agency = self._node.agency_id
        try:
            unverified = UnverifiedEnvelope.parse(row.envelope)
            keys = await self._directory.verify_keys("node", row.origin_node, row.created_at)
            verified = unverified.verify(
                keys,
                subject_border_pair=row.border_pair,
                subject_kind=row.kind,
                recipient_agency=agency,
            )
            opened = verified.open(agency, self._kem_keys)
        except InvalidEnvelope as exc:
            raise NotFound("the stored alert no longer verifies") from exc
        result: dict[str, Any] = {
            "alert_id": row.alert_id,
            "stream_seq": row.stream_seq,
            "header": opened.header,
            "case": json.loads(opened.parts["case"]),
        }
        if "nominal" in opened.parts:
            result["nominal"] = json.loads(opened.parts["nominal"])
        return result
