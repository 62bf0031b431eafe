"""Auditors' reads are audited too [docs/contracts/receipts.md]: a node's signed record of one
ledger query.

The node that served an auditor's ``/v1/ledger/...`` request signs a ``ledger_queried`` record
(who asked, which path, which query string) with its own Ed25519 key, the same way it signs
receipts, and publishes it on ``blo.v1.ledger.queries``. The ledger writer verifies it against the
node's keys and appends a ``ledger_queried`` entry; the node never writes the ledger itself.

Not here: which requests are recorded and what a refused publish does to the request
(``api.routes_ledger``), or turning the record into an entry (``ledger.writer``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.receipt import record_message_id, sign_receipt
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import format_time
from blo_exchange.domain.subjects import LEDGER_QUERIES_SUBJECT
from blo_exchange.services.ports import Publisher

__all__ = ["LEDGER_QUERIED", "MAX_QUERY_CHARS", "LedgerQueryRecorder"]

LEDGER_QUERIED = "ledger_queried"
MAX_QUERY_CHARS = 500
"""Longer query strings are cut: the record says what was asked, not every byte of it."""


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

        Raises ``BusError`` when it did not: the caller must then not hand out the answer.
        """
        receipt_id = self._new_id()
        body: dict[str, Any] = {
            "receipt_id": receipt_id,
            "type": LEDGER_QUERIED,
            "node": self._node.id,
            "agency": self._node.agency_id,
            "principal": principal_id,
            "path": path,
            "query": query[:MAX_QUERY_CHARS],
            "occurred_at": format_time(self._clock()),
        }
        raw = sign_receipt(body, self._signer)
        await self._publisher.publish(
            LEDGER_QUERIES_SUBJECT, raw, msg_id=record_message_id(receipt_id, self._signer)
        )
        return body
