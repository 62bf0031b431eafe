"""A node's search index: match keys of the alerts its agency may read, kept in its own database.

The index follows the inbox by feed position (``Inbox.page``), like a feed reader: each alert
stored for this node's agency is verified and opened with the agency's own keys
(``services.signed``), and its names, plates, document numbers, phones and companies become match
keys (``domain.transliteration``). What the agency was not given it cannot index: the nominal
part opens only for agencies an agreement gives it to, so a name that came only in a nominal block
sealed to others is never a key here. Nothing is published; the keys never leave the node.

One opening per alert per node (issue 14): what delivery has just opened (:meth:`stored`, its
post-store hook) and what ingest has just sealed (:meth:`sealed`) is kept in memory, briefly and
bounded, under the alert id and the digest of its sealed bytes; the next round indexes those rows
from it instead of verifying and opening them again. A row met without an entry (a backfill, an
entry dropped for room) is opened as before. What delivery hands over at the very next positions
is indexed by the next round without reading those rows back.

:meth:`SearchIndex.catch_up` is called before every search and lookout (so an alert stored a
moment ago is found) and by the node in the background; its first call indexes everything already
in the inbox (the backfill). Not here: ranking, the re-check before display (``services.search``,
``services.lookout``).

Keys of the nominal part are personal data. :meth:`SearchIndex.forget` deletes them when that
part is erased; an alert whose nominal part no longer opens gives none when indexed again.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Protocol

from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.crypto.retention import holds_nominal_block
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import parse_time, utc_now
from blo_exchange.domain.transliteration import FieldKind, keys_for
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.services.ports import Directory, Inbox, InboxItem, StoredAlert
from blo_exchange.services.retention import RetainedNominal
from blo_exchange.services.signed import SignedMessages

__all__ = [
    "CASE",
    "NOMINAL",
    "IndexedAlert",
    "SearchIndex",
    "SearchKey",
    "SearchStore",
    "field_values",
    "indexed_alert",
    "matches",
]

CASE: Final = "case"
NOMINAL: Final = "nominal"
_PAGE: Final = 200
_OPENED_MAX: Final = 2048
"""Entries kept for the next round: a round every 2 s indexes them long before this many."""
_MADE_BETWEEN_YIELDS: Final = 16
"""Entries a round makes before it lets the event loop run others. Making an alert's keys takes
~0.1 ms (transliterated names, plates), and a round after two busy seconds makes ~250: made in
one go, they held the loop 22-37 ms on a loaded machine, every accept and delivery in flight
waiting behind them (issue 14; bench/README.md, "stop 29")."""

log = logging.getLogger(__name__)

_TARGETS: Final = {
    "plate": FieldKind.PLATE,
    "person": FieldKind.PERSON,
    "document": FieldKind.DOCUMENT,
    "phone": FieldKind.PHONE,
    "company": FieldKind.COMPANY,
}


@dataclass(frozen=True)
class SearchKey:
    field: FieldKind
    source: str  # CASE | NOMINAL
    key: str


@dataclass(frozen=True)
class IndexedAlert:
    """One inbox item as the index keeps it: the facts a lookout filters on, and its keys."""

    node_id: str
    agency_id: str
    alert_id: str
    feed_seq: int
    kind: str
    origin_agency: str
    valid_until: datetime | None
    supersedes: str | None
    keys: frozenset[SearchKey]


class SearchStore(Protocol):
    async def indexed_up_to(self, node_id: str, agency_id: str) -> int:
        """The highest feed position indexed for this node and agency; 0 when none."""
        ...

    async def put(self, alerts: Sequence[IndexedAlert]) -> None:
        """Add alerts and their keys in one transaction; alerts already there are skipped."""
        ...

    async def find(
        self,
        node_id: str,
        agency_id: str,
        field: FieldKind,
        keys: frozenset[str],
        *,
        active_risk_at: datetime | None,
        limit: int,
    ) -> list[str]:
        """Alert ids (newest first) that hold every one of ``keys`` for ``field``. With
        ``active_risk_at``: only risk alerts not expired then and not superseded by a later
        alert of the same origin agency."""
        ...

    async def forget(self, node_id: str, alert_id: str, *, source: str | None) -> int:
        """Delete an alert's keys (of ``source`` only, when given); how many went."""
        ...


def field_values(
    case: Mapping[str, Any], nominal: Mapping[str, Any] | None
) -> Iterator[tuple[FieldKind, str, str]]:
    """(field, source, value) of every searchable value of an opened alert."""
    for target in case.get("targets") or ():
        field = _TARGETS.get(str(target.get("type")))
        if field is not None and isinstance(target.get("value"), str):
            yield field, CASE, target["value"]
    identifier = (case.get("conveyance") or {}).get("identifier")
    if isinstance(identifier, str):
        yield FieldKind.PLATE, CASE, identifier
    if not nominal:
        return
    for person in nominal.get("persons") or ():
        yield FieldKind.PERSON, NOMINAL, str(person.get("name", ""))
        number = (person.get("document") or {}).get("number")
        if isinstance(number, str):
            yield FieldKind.DOCUMENT, NOMINAL, number
    for company in nominal.get("companies") or ():
        yield FieldKind.COMPANY, NOMINAL, str(company.get("name", ""))
        if isinstance(company.get("registration"), str):
            yield FieldKind.DOCUMENT, NOMINAL, company["registration"]
    for phone in nominal.get("phones") or ():
        yield FieldKind.PHONE, NOMINAL, str(phone)


def matches(
    case: Mapping[str, Any],
    nominal: Mapping[str, Any] | None,
    field: FieldKind,
    query: frozenset[str],
) -> bool:
    """True when one value of ``field`` in the opened alert holds every key of ``query`` (all
    the words of a name in one person's name, not spread over two)."""
    return bool(query) and any(
        query <= keys_for(kind, value)
        for kind, _, value in field_values(case, nominal)
        if kind is field
    )


def indexed_alert(
    row: InboxItem, header: Mapping[str, Any] | None, parts: Mapping[str, bytes]
) -> IndexedAlert:
    """What the index keeps of an opened inbox item (``header=None``: it did not open)."""
    case = _json(parts.get(CASE))
    nominal = _json(parts.get(NOMINAL)) if NOMINAL in parts else None
    keys = frozenset(
        SearchKey(field, source, key)
        for field, source, value in field_values(case, nominal)
        for key in keys_for(field, value)
    )
    valid_until = case.get("valid_until")
    supersedes = None if header is None else header.get("supersedes")
    return IndexedAlert(
        node_id=row.node_id,
        agency_id=row.agency_id,
        alert_id=row.alert_id,
        feed_seq=row.feed_seq,
        kind=row.kind,
        origin_agency=row.origin_agency,
        valid_until=parse_time(valid_until) if isinstance(valid_until, str) else None,
        supersedes=supersedes if isinstance(supersedes, str) else None,
        keys=keys,
    )


def _known_entry(
    row: InboxItem, header: Mapping[str, Any], parts: Mapping[str, bytes]
) -> IndexedAlert:
    """:func:`indexed_alert` of what was opened elsewhere, for ``row`` as the inbox holds it."""
    if NOMINAL in parts and not holds_nominal_block(row.envelope):
        # Not readable here (erased, or arrived after its retention ended): the row as the
        # inbox gives it back is what may be indexed.
        parts = {k: v for k, v in parts.items() if k != NOMINAL}
    return indexed_alert(row, header, parts)


def _json(part: bytes | None) -> dict[str, Any]:
    if part is None:
        return {}
    value = json.loads(part)
    return value if isinstance(value, dict) else {}


_HandedOver = tuple[InboxItem, Mapping[str, Any], Mapping[str, bytes]]
"""An alert handed over opened: the item as stored, its header, its case and nominal parts."""


class SearchIndex:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        inbox: Inbox,
        store: SearchStore,
    ) -> None:
        self._node = node
        self._kem_keys = kem_keys
        self._signed = SignedMessages(directory, clock=utc_now)
        self._inbox = inbox
        self._store = store
        self._lock = asyncio.Lock()
        # feed position -> the entry of an alert delivery or ingest handed over, not yet indexed.
        # Kept as handed over: its keys are made when the round indexes it, not on the path
        # (an accept, a delivered batch) that hands it over.
        self._ready: dict[int, _HandedOver] = {}
        self.indexed = 0
        self.opens = 0
        self.direct = 0
        """Alerts indexed straight from delivery's hand-over, with no read of the inbox."""

    @property
    def store(self) -> SearchStore:
        return self._store

    async def catch_up(self) -> int:
        """Index every alert stored for this node's agency since the last call; how many."""
        node, agency = self._node.id, self._node.agency_id
        added = 0
        async with self._lock:
            while True:
                added += await self._index_ready()
                after = await self._store.indexed_up_to(node, agency)
                rows = await self._inbox.page(node, agency, after=after, limit=_PAGE)
                if not rows:
                    return added
                entries: list[IndexedAlert] = []
                for row in rows:
                    entries.append(await self._entry(row))
                    if len(entries) % _MADE_BETWEEN_YIELDS == 0:
                        await asyncio.sleep(0)
                await self._store.put(entries)
                added += len(rows)
                self.indexed += len(rows)

    def sealed(
        self, item: InboxItem, header: Mapping[str, Any], parts: Mapping[str, bytes]
    ) -> None:
        """Ingest's hook: the plaintext of an alert this node sealed and stored as its agency's
        own copy (which opens every part to its own agency), at its feed position: indexed as
        :meth:`stored` indexes what delivery hands over."""
        self._keep_ready(item, header, parts)

    async def stored(self, alerts: Sequence[StoredAlert]) -> None:
        """Delivery's post-store hook: what it opened for this node's agency, each item as the
        inbox stored it, with its feed position. Kept by position (nothing is written here:
        one write a round costs less than one a batch when alerts come one at a time); the next
        round indexes the run of them at the very next positions without reading the inbox
        (``direct``), and one behind a position not handed over (stored by another process, or
        before a restart) when its page reaches it, still without opening it again."""
        for alert in alerts:
            self._keep_ready(alert.item, alert.opened.header, alert.opened.parts)

    def _keep_ready(
        self, item: InboxItem, header: Mapping[str, Any], parts: Mapping[str, bytes]
    ) -> None:
        if item.agency_id == self._node.agency_id and item.node_id == self._node.id:
            kept = {name: parts[name] for name in (CASE, NOMINAL) if name in parts}
            self._ready[item.feed_seq] = (item, header, kept)
        while len(self._ready) > _OPENED_MAX:
            del self._ready[min(self._ready)]

    async def _index_ready(self) -> int:
        """Under the lock: put the run of handed-over entries that follows what is indexed;
        drop those at or below it (indexed meanwhile). How many were put."""
        after = await self._store.indexed_up_to(self._node.id, self._node.agency_id)
        added = 0
        while True:
            for done in [seq for seq in self._ready if seq <= after]:
                del self._ready[done]
            run: list[IndexedAlert] = []
            while len(run) < _PAGE and (ready := self._ready.pop(after + 1 + len(run), None)):
                run.append(_known_entry(*ready))
                if len(run) % _MADE_BETWEEN_YIELDS == 0:
                    # More may be handed over meanwhile: the run goes on with them, if next.
                    await asyncio.sleep(0)
            if not run:
                return added
            await self._store.put(run)  # more may be handed over meanwhile: look again
            after += len(run)
            added += len(run)
            self.indexed += len(run)
            self.direct += len(run)

    async def _entry(self, row: InboxItem) -> IndexedAlert:
        ready = self._ready.pop(row.feed_seq, None)
        if ready is not None and ready[0].alert_id == row.alert_id:
            return _known_entry(*ready)
        self.opens += 1
        try:
            opened = (await self._signed.open_stored(row, kem_keys=self._kem_keys)).opened
        except InvalidEnvelope:
            # Kept without keys, so the index moves past it; the feed refuses it too.
            log.warning("stored alert does not verify; not indexed", extra={"seq": row.feed_seq})
            return indexed_alert(row, None, {})
        return indexed_alert(row, opened.header, opened.parts)

    async def find(
        self, field: FieldKind, keys: Iterable[str], *, active_risk_at: datetime | None, limit: int
    ) -> list[str]:
        return await self._store.find(
            self._node.id,
            self._node.agency_id,
            field,
            frozenset(keys),
            active_risk_at=active_risk_at,
            limit=limit,
        )

    async def forget(self, alert_id: str, *, nominal_only: bool = True) -> int:
        """Erase an alert's keys: those of its nominal part (when that part is erased), or all."""
        return await self._store.forget(
            self._node.id, alert_id, source=NOMINAL if nominal_only else None
        )

    async def nominal_erased(self, row: RetainedNominal) -> None:
        """The retention sweeper's erasure listener: the keys made from an erased nominal part
        go with it (idempotent: a second call deletes nothing). Under the indexing lock, so a
        round that opened the alert before its key was destroyed writes before this deletes."""
        async with self._lock:
            self._ready.clear()
            await self.forget(row.alert_id)
