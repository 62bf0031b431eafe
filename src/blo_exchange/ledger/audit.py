"""Auditors' reads are audited too [docs/contracts/receipts.md]: a node's signed record of one
ledger query.

The node that served an auditor's ``/v1/ledger/...`` request signs a ``ledger_queried`` record
(who asked, which path, which filters, parsed and in full) with its own Ed25519 key, the same way
it signs receipts, and publishes it on ``blo.v1.ledger.queries``. The ledger writer verifies it
against the node's keys and appends a ``ledger_queried`` entry; the node never writes the ledger
itself.

Not here: which requests are recorded and what a refused publish does to the request
(``api.routes_ledger``), or turning the record into an entry (``ledger.writer``).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.receipt import record_message_id, sign_receipt
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import format_time
from blo_exchange.domain.subjects import LEDGER_QUERIES_SUBJECT
from blo_exchange.errors import QueryTooLong
from blo_exchange.services.ports import Publisher

__all__ = ["LEDGER_QUERIED", "MAX_QUERY_CHARS", "LedgerQueryRecorder", "parse_filters"]

LEDGER_QUERIED = "ledger_queried"
MAX_QUERY_CHARS = 2000
"""A longer query string is refused (422), never recorded cut: the record holds every filter."""


def parse_filters(query: str) -> dict[str, list[str]]:
    """Every parameter of a query string, decoded, each name's values in the order given."""
    filters: dict[str, list[str]] = {}
    for name, value in parse_qsl(query, keep_blank_values=True):
        filters.setdefault(name, []).append(value)
    return dict(sorted(filters.items()))


def _new_id() -> str:
    return str(uuid.uuid4())


class LedgerQueryRecorder:
    def __init__(
        self,
        *,
        node: Node,
        signer: SigningKey,
        publisher: Publisher,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = _new_id,
    ) -> None:
        self._node = node
        self._signer = signer
        self._publisher = publisher
        self._clock = clock
        self._new_id = new_id

    async def record(self, *, principal_id: str, path: str, query: str) -> dict[str, Any]:
        """Publish the signed record and return its body once JetStream acknowledged it.

        Raises ``BusError`` when it did not: the caller must then not hand out the answer. A
        query string longer than :data:`MAX_QUERY_CHARS` is recorded as refused (its length and
        SHA-256, no filters) and raises ``QueryTooLong``: that answer is not handed out either.
        """
        receipt_id = self._new_id()
        too_long = len(query) > MAX_QUERY_CHARS
        body: dict[str, Any] = {
            "receipt_id": receipt_id,
            "type": LEDGER_QUERIED,
            "node": self._node.id,
            "agency": self._node.agency_id,
            "principal": principal_id,
            "path": path,
            "filters": {} if too_long else parse_filters(query),
            "occurred_at": format_time(self._clock()),
        }
        if too_long:
            body["refused"] = {
                "reason": "query_too_long",
                "query_chars": len(query),
                "query_sha256": hashlib.sha256(query.encode("utf-8")).hexdigest(),
            }
        raw = sign_receipt(body, self._signer)
        await self._publisher.publish(
            LEDGER_QUERIES_SUBJECT, raw, msg_id=record_message_id(receipt_id, self._signer)
        )
        if too_long:
            raise QueryTooLong(
                f"the query string has {len(query)} characters, more than {MAX_QUERY_CHARS}: "
                "an auditor's query is recorded in full or not answered"
            )
        return body
