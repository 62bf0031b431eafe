"""The ledger writer: one ledger entry per alert, receipt, auditor's query and directory change.

It verifies what it records (the origin node's signature on an envelope, the receiving node's on a
receipt or on its record of an auditor's query) but opens nothing: it holds no agency's key.
Whatever fails verification is still recorded, as ``alert_rejected`` with the reason, so nothing
on the bus goes unaccounted for.
Appends are idempotent on the event id, so a redelivered batch adds nothing; the caller acks only
after :meth:`LedgerWriter.handle` returned.

Directory changes (keys registered and revoked, agreements changed) do not travel on the bus: the
caller hands :meth:`LedgerWriter.record_directory` the directory's state now and then, and the
writer appends the entries that state calls for and the ledger does not have yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.domain.ledger import RECEIPT_ENTRY_TYPES
from blo_exchange.domain.subjects import (
    ALERTS_PREFIX,
    LEDGER_QUERIES_SUBJECT,
    RECEIPTS_PREFIX,
    parse_alert_subject,
    parse_receipt_subject,
)
from blo_exchange.errors import InvalidEnvelope, NotEntitled
from blo_exchange.ledger.audit import LEDGER_QUERIED, MAX_QUERY_CHARS
from blo_exchange.ledger.entries import DirectoryState, build_entry, directory_entries
from blo_exchange.ledger.journal import WriterJournal
from blo_exchange.ledger.ports import AppendGuard
from blo_exchange.ledger.records import query_fields, receipt_fields, shared_fields
from blo_exchange.services.ports import Directory, LedgerStore, NewLedgerEntry
from blo_exchange.services.signed import SignedMessages

__all__ = ["InboundMessage", "LedgerWriter", "WriterStore"]

# Where auditors read the ledger: the API and the web pages built on it.
LEDGER_READ_PATHS = ("/v1/ledger", "/auditor")

RECEIPT_TYPES = frozenset(t.value for t in RECEIPT_ENTRY_TYPES)


@dataclass(frozen=True)
class InboundMessage:
    subject: str
    data: bytes
    stream_seq: int


class WriterStore(LedgerStore, Protocol):
    async def append(
        self, entries: Sequence[NewLedgerEntry], guard: AppendGuard | None = None
    ) -> list[int]: ...

    async def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        """Those of ``event_ids`` the ledger already has (a read; no lock taken)."""
        ...


class LedgerWriter:
    def __init__(
        self,
        *,
        directory: Directory,
        store: WriterStore,
        clock: Callable[[], datetime],
        journal: WriterJournal | None = None,
    ) -> None:
        self._signed = SignedMessages(directory, clock=clock)
        self._store = store
        self.journal = journal
        self._clock = clock
        self._recorded: set[str] = set()  # directory event ids known to be in the ledger
        self.appended = 0

    async def handle(self, messages: Sequence[InboundMessage]) -> list[int]:
        entries = [await self._entry_for(m) for m in messages]
        indexes = await self._append(entries)
        self.appended += len(indexes)
        return indexes

    async def _append(self, entries: Sequence[NewLedgerEntry]) -> list[int]:
        """Through the journal when there is one: raises ``LedgerForkError`` once the ledger is
        not what this writer appended (it then appends nothing more)."""
        if self.journal is None:
            return await self._store.append(entries)
        async with self.journal.lock:
            return await self._store.append(entries, self.journal)

    async def record_directory(self, state: DirectoryState) -> list[int]:
        """Append the directory changes ``state`` shows that the ledger does not have yet.

        Idempotent: event ids already recorded (by this writer, another one, or before a
        restart) are skipped, first from memory, then by one indexed lookup, and finally by
        :meth:`LedgerStore.append` itself under its lock.
        """
        wanted = [
            e
            for e in directory_entries(state, now=self._clock())
            if e.event_id not in self._recorded
        ]
        if not wanted:
            return []
        known = await self._store.known_event_ids([e.event_id for e in wanted])
        self._recorded |= known
        fresh = [e for e in wanted if e.event_id not in known]
        indexes = await self._append(fresh) if fresh else []
        self._recorded |= {e.event_id for e in fresh}
        self.appended += len(indexes)
        return indexes

    async def _entry_for(self, message: InboundMessage) -> NewLedgerEntry:
        if message.subject.startswith(ALERTS_PREFIX + "."):
            return await self._shared(message)
        if message.subject.startswith(RECEIPTS_PREFIX + "."):
            return await self._receipt(message)
        if message.subject == LEDGER_QUERIES_SUBJECT:
            return await self._query(message)
        return self._rejected(message, "unknown_subject", None)

    async def _shared(self, message: InboundMessage) -> NewLedgerEntry:
        # (1) subject, (2) structure, (3) signature by a known unrevoked key of the origin node,
        # (4) subject matches header. Not checked: anything about the ciphertext's content.
        # (5) its node was entitled to say it (services.signed); a message that fails only this
        # is validly signed, so its rejection names its alert id.
        unverified: UnverifiedEnvelope | None = None
        try:
            pair, kind = parse_alert_subject(message.subject)
            unverified = UnverifiedEnvelope.parse(message.data)
            verified = await self._signed.envelope(
                unverified, border_pair=pair, kind=kind, recipient_agency=None
            )
            args = shared_fields(verified, border_pair=pair, kind=kind)
        except (InvalidEnvelope, ValueError, KeyError) as exc:
            alert_id = (
                unverified.alert_id
                if unverified is not None and isinstance(exc, NotEntitled)
                else None
            )
            return self._rejected(message, getattr(exc, "reason", "malformed"), alert_id)
        return build_entry(
            event_id=f"alert_shared:{verified.alert_id}",
            envelope_sha256=_sha256(message.data),
            record=verified.redacted_all(),
            **args,
        )

    async def _receipt(self, message: InboundMessage) -> NewLedgerEntry:
        try:
            pair = parse_receipt_subject(message.subject)
            body = await self._signed.record(UnverifiedReceipt.parse(message.data))
            if body.get("border_pair") != pair or body.get("type") not in RECEIPT_TYPES:
                raise InvalidEnvelope("receipt does not match its subject")
            args = receipt_fields(body, border_pair=pair)
        except (InvalidEnvelope, ValueError, KeyError) as exc:
            return self._rejected(message, getattr(exc, "reason", "malformed_receipt"), None)
        return build_entry(
            # Keyed by the signing node too: another node can't take this id first.
            event_id=f"receipt:{body['node']}:{body['receipt_id']}",
            record=message.data,
            **args,
        )

    async def _query(self, message: InboundMessage) -> NewLedgerEntry:
        # (1) structure, (2) signature by a known unrevoked key of the node that served the
        # query, (3) the body is a well-formed query record. Not checked: that the node really
        # served that request (only it can say so; a node that hides queries is not caught here).
        try:
            record = UnverifiedReceipt.parse(message.data)
            body = await self._signed.record(record)
            if body.get("type") != LEDGER_QUERIED:
                raise InvalidEnvelope("not a ledger query record")
            fields = {name: body[name] for name in ("receipt_id", "principal", "path", "filters")}
            if "refused" in body:
                fields["refused"] = body["refused"]
            if not (
                all(isinstance(fields[n], str) for n in ("receipt_id", "principal", "path"))
                and fields["path"].startswith(LEDGER_READ_PATHS)
                and _well_formed_filters(fields["filters"])
                and isinstance(fields.get("refused", {}), dict)
            ):
                raise InvalidEnvelope("malformed ledger query record")
            args = query_fields(record.node, body)
        except (InvalidEnvelope, ValueError, KeyError) as exc:
            return self._rejected(message, getattr(exc, "reason", "malformed_query"), None)
        return build_entry(
            event_id=f"receipt:{record.node}:{fields['receipt_id']}", record=message.data, **args
        )

    def _rejected(
        self, message: InboundMessage, reason: str, alert_id: str | None
    ) -> NewLedgerEntry:
        digest = _sha256(message.data)
        return build_entry(
            event_id=f"rejected:{digest}:{message.subject[:200]}",
            type="alert_rejected",
            occurred_at=self._clock(),
            alert_id=alert_id,
            actor_node=None,
            actor_agency=None,
            envelope_sha256=digest,
            detail={"reason": reason, "subject": message.subject[:200], "by": "ledger-writer"},
        )


def _well_formed_filters(filters: object) -> bool:
    """``{name: [value, ...]}`` of strings, no bigger than a query string we would answer."""
    if not isinstance(filters, dict):
        return False
    size = 0
    for name, values in filters.items():
        if not (isinstance(values, list) and values and all(isinstance(v, str) for v in values)):
            return False
        size += len(name) + sum(len(v) + 1 for v in values)
    return size <= MAX_QUERY_CHARS


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
