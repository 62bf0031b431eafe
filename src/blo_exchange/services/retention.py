"""Keeping a received nominal block under retention: the inbox that stores it crypto-shreddable.

:class:`RetainingInbox` wraps a node's :class:`~blo_exchange.services.ports.Inbox` (the node's
composition puts it in front of the SQL inbox, so delivery, the feed, re-share and feedback use
it unchanged). On ``add``:

1. An alert of **another agency** that carries a nominal part this node can read is stored with
   that part's ciphertext removed (the stored envelope still verifies, its case still opens), and
   the part record goes to the vault (the :class:`RetentionStore`'s rows) sealed under the
   node's epoch key of the day it expires (``domain.retention`` says which day). The inner inbox
   stores the vault row in the transaction that stores the item (``Inbox.add``'s ``kept``): never
   one without the other; a vault row the node has already (a redelivery) is kept as it is.
2. An alert **this node originated** with a nominal part sealed to another agency gets an
   ``origin`` row: its analysts' review task (``services.retention_review``).
3. Anything else (an own agency's alert from another of its nodes, an alert without a nominal
   part) is stored as it came: the originating agency's own retention is its own business.

On ``get`` and ``page`` the nominal part is put back, while the epoch key exists; afterwards the
item comes without it (its case still opens). :class:`RetainingTaxiiIndex` does the same for the
TAXII server's own reads of the inbox.

Not here: erasing (``services.retention_sweep``), extending (``services.retention_review``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import date, datetime
from typing import Any, Protocol

from blo_exchange.crypto.retention import (
    carries_nominal,
    envelope_document,
    join_nominal,
    nominal_readers,
    open_nominal,
    seal_nominal,
    split_nominal,
)
from blo_exchange.domain.directory import Node
from blo_exchange.domain.retention import day_of, governing_retention
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.services.ports import (
    Completion,
    Directory,
    Inbox,
    InboxItem,
    Rejection,
    RetainedNominal,
)
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType, deterministic_receipt_id
from blo_exchange.services.taxii_index import AddedAlert, TaxiiIndex

__all__ = [
    "EpochKeyStore",
    "RetainedNominal",
    "RetainingInbox",
    "RetainingTaxiiIndex",
    "RetentionStore",
    "send_about",
]

log = logging.getLogger(__name__)


class EpochKeyStore(Protocol):
    """The node's epoch keys (``crypto.retention.EpochKeys``)."""

    def get(self, day: date, *, create: bool) -> bytes | None: ...
    def days(self) -> list[date]: ...
    def destroy(self, day: date) -> bool: ...


async def send_about(
    receipts: ReceiptPublisher,
    row: RetainedNominal,
    *,
    type: ReceiptType,
    key: Sequence[str],
    detail: dict[str, Any],
) -> None:
    """Sign and publish a lifecycle receipt or record about ``row``'s alert (docs/retention.md);
    its id is a UUIDv5 of the alert, this node and ``key``, so a re-sent one is deduplicated."""
    await receipts.send(
        receipt_id=deterministic_receipt_id(row.alert_id, row.node_id, *key),
        type=type,
        border_pair=row.border_pair,
        alert_id=row.alert_id,
        kind=row.kind,
        agreement_ids=list(row.agreement_ids),
        envelope_sha256=row.envelope_sha256,
        detail={"agreement_id": row.agreement_id, **detail},
    )


class RetentionStore(Protocol):
    async def get(self, node_id: str, alert_id: str) -> RetainedNominal | None: ...
    async def many(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, RetainedNominal]: ...
    async def due(self, node_id: str, at: datetime) -> list[RetainedNominal]:
        """Recipient rows not yet erased whose ``expires_at`` is at or before ``at``."""
        ...

    async def expiring(self, node_id: str, before: datetime) -> list[RetainedNominal]:
        """Origin rows whose ``expires_at`` is before ``before``, soonest first."""
        ...

    async def update(self, row: RetainedNominal, *, if_sealed_on: date | None = None) -> bool:
        """Replace the row's expiry, sealed part, decision and erasure fields; with
        ``if_sealed_on``, only while it is not erased and still sealed under that day's key
        (an extension racing the sweeper loses). Whether it was replaced."""
        ...


class RetainingInbox:
    """An :class:`Inbox` that keeps received nominal parts crypto-shreddable (module docstring)."""

    def __init__(
        self,
        inner: Inbox,
        *,
        node: Node,
        store: RetentionStore,
        keys: EpochKeyStore,
        directory: Directory,
        clock: Callable[[], datetime],
    ) -> None:
        self._inner = inner
        self._node = node
        self._store = store
        self._keys = keys
        self._directory = directory
        self._clock = clock

    def sealed_here(self, envelope_sha256: str) -> bool:
        return self._inner.sealed_here(envelope_sha256)

    def sealing(self, envelope_sha256: str) -> AbstractContextManager[None]:
        return self._inner.sealing(envelope_sha256)

    async def wait_sealed(self, envelope_sha256: str, timeout: float) -> bool:
        return await self._inner.wait_sealed(envelope_sha256, timeout)

    async def add(
        self,
        item: InboxItem,
        *,
        completes: Completion | None = None,
        kept: RetainedNominal | None = None,
    ) -> InboxItem | None:
        _own_rows_only(kept is not None)
        stored_as, row = await self._prepare(item)
        got = await self._inner.add(stored_as, completes=completes, kept=row)  # (1)
        return None if got is None else _as_read(item, stored_as, row, got)

    async def add_batch(
        self,
        items: Sequence[InboxItem],
        *,
        kept: Sequence[RetainedNominal] = (),
        completes: Sequence[Completion] = (),
    ) -> list[InboxItem | None]:
        """Delivery's batch: each item prepared as :meth:`add` does, stored with the vault's rows
        by the inner inbox's one call. Each stored item comes back as
        :meth:`get` would give it now: whole while its nominal part is in the vault under a key,
        without that part when it was never readable here (no nominal agreement, or it arrived
        after its retention ended)."""
        _own_rows_only(bool(kept))
        prepared = [await self._prepare(item) for item in items]
        rows = [row for _, row in prepared if row is not None]
        stored = await self._inner.add_batch(
            [stored for stored, _ in prepared], kept=rows, completes=completes
        )  # (1)
        return [
            None if got is None else _as_read(item, stored_as, row, got)
            for item, (stored_as, row), got in zip(items, prepared, stored, strict=True)
        ]

    async def _prepare(self, item: InboxItem) -> tuple[InboxItem, RetainedNominal | None]:
        """What the inner inbox stores of ``item``: the nominal part of another agency's alert
        moved to the vault, the rest as it came; and the vault's row to store with it."""
        if not carries_nominal(item.envelope):
            return item, None  # (3)
        if item.origin_agency == self._node.agency_id:
            if item.origin_node == self._node.id:
                return item, await self._origin_row(item)  # (2)
            return item, None  # (3)
        document = envelope_document(item.envelope)  # parsed once for what follows
        split = split_nominal(item.envelope, document=document)
        if split is None:
            return item, None  # (3)
        stored, record = split
        row = await self._row(item, document, role="recipient")
        if row is None:
            # No cited agreement allows the nominal block: the authority check refuses such an
            # envelope before it gets here; should one slip through, its nominal part is dropped.
            log.warning("nominal part without a nominal agreement", extra={"alert": item.alert_id})
        elif row.expires_at > self._clock():
            day = day_of(row.expires_at)
            key = self._keys.get(day, create=True)
            assert key is not None
            row = replace(row, sealed=seal_nominal(record, key, alert_id=item.alert_id, day=day))
        # else: arrived after its retention ended (a leaf site back online): never readable
        # here; the row is kept unsealed, and the sweeper's next pass finds it due and sends
        # the receipt.
        return replace(item, envelope=stored), row

    async def get(self, node_id: str, alert_id: str) -> InboxItem | None:
        item = await self._inner.get(node_id, alert_id)
        if item is None:
            return None
        return (await self._restore([item]))[0]

    async def page(
        self, node_id: str, agency_id: str, *, after: int, limit: int
    ) -> list[InboxItem]:
        return await self._restore(
            await self._inner.page(node_id, agency_id, after=after, limit=limit)
        )

    async def stored_digests(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, str]:
        return await self._inner.stored_digests(node_id, alert_ids)

    async def last_position(self, node_id: str, agency_id: str) -> int:
        return await self._inner.last_position(node_id, agency_id)

    async def reject(self, rejection: Rejection) -> bool:
        return await self._inner.reject(rejection)

    async def _origin_row(self, item: InboxItem) -> RetainedNominal | None:
        try:
            document = envelope_document(item.envelope)
            readers = nominal_readers(item.envelope, document=document)
        except InvalidEnvelope:
            return None
        if any(agency != self._node.agency_id for agency in readers):
            return await self._row(item, document, role="origin")
        return None

    async def _row(
        self, item: InboxItem, document: dict[str, Any], *, role: str
    ) -> RetainedNominal | None:
        """The vault's row for ``item``, whose envelope ``document`` is (verified, or sealed
        here): the retention of the agreements its signed header cites."""
        cited = tuple(str(a) for a in document["header"]["agreement_ids"])
        retention = governing_retention(await self._directory.agreements(), cited, item.created_at)
        if retention is None:
            return None
        return RetainedNominal(
            node_id=self._node.id,
            alert_id=item.alert_id,
            role=role,
            agency_id=self._node.agency_id,
            origin_agency=item.origin_agency,
            border_pair=item.border_pair,
            kind=item.kind,
            agreement_id=retention.agreement_id,
            agreement_ids=cited,
            envelope_sha256=item.envelope_sha256,
            created_at=item.created_at,
            expires_at=retention.expires_at,
            max_until=retention.max_until,
        )

    async def restore(self, items: list[InboxItem]) -> list[InboxItem]:
        """``items`` read past this inbox (the TAXII index), their nominal parts put back."""
        return await self._restore(items)

    async def _restore(self, items: list[InboxItem]) -> list[InboxItem]:
        foreign = [i.alert_id for i in items if i.origin_agency != self._node.agency_id]
        if not foreign:
            return items
        rows = await self._store.many(self._node.id, foreign)
        return [self._joined(item, rows.get(item.alert_id)) for item in items]

    def _joined(self, item: InboxItem, row: RetainedNominal | None) -> InboxItem:
        if row is None or row.sealed is None:
            return item
        try:
            key = self._keys.get(row.sealed.day, create=False)
            record = open_nominal(row.sealed, key, alert_id=item.alert_id)
            return replace(item, envelope=join_nominal(item.envelope, record))
        except InvalidEnvelope:
            return item  # erased (or being erased): the alert without its nominal part


def _own_rows_only(given: bool) -> None:
    if given:
        raise ValueError("a retaining inbox makes the vault rows of what it stores itself")


def _as_read(
    item: InboxItem, stored_as: InboxItem, row: RetainedNominal | None, got: InboxItem
) -> InboxItem:
    """What :meth:`RetainingInbox.get` gives back of ``item``, just stored as ``stored_as``: the
    whole item when nothing was taken from it or the vault holds what was, under a key; else
    ``got``."""
    whole = stored_as is item or (row is not None and row.sealed is not None)
    return replace(item, feed_seq=got.feed_seq) if whole else got


class RetainingTaxiiIndex:
    """A :class:`TaxiiIndex` whose items come with their nominal parts, like the inbox's."""

    def __init__(self, inner: TaxiiIndex, inbox: RetainingInbox) -> None:
        self._inner = inner
        self._inbox = inbox

    async def added(
        self,
        node_id: str,
        agency_id: str,
        *,
        border_pair: str | None,
        start: tuple[datetime, int] | None,
        added_after: datetime | None,
        limit: int,
    ) -> list[AddedAlert]:
        rows = await self._inner.added(
            node_id,
            agency_id,
            border_pair=border_pair,
            start=start,
            added_after=added_after,
            limit=limit,
        )
        items = await self._inbox.restore([row.item for row in rows])
        return [replace(row, item=item) for row, item in zip(rows, items, strict=True)]
