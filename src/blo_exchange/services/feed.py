"""Reading alerts: an analyst's feed and single alerts, from the sealed inbox.

Every read is served from frames opened once per alert per node (``feed_frames``): delivery
hands each alert it has just verified and opened to :meth:`FeedService.stored`, and a row without
a frame is verified and opened here, once however many readers ask for it at the same time. A
frame is served only for a row holding exactly the bytes it was opened from, while the key that
signed them is still one the directory believes for its origin node at its ``created_at``; so a
row altered in the database is verified again and refused rather than shown, and a revocation
dated before an alert stops it being shown. The live feed (:meth:`FeedService.live`) keeps a
window of the newest frames that every live subscriber reads; a subscriber further behind (a
catch-up from an old cursor) pages the database and takes the same frames.

Positions (cursors, SSE ids) are the node's own order of storing alerts (``feed_seq``), not the
stream's sequence: an alert redelivered after a crash is stored after alerts with later stream
sequences, and with the stream's order a follower already past it would never see it. The inbox
makes a position visible only after every lower one, so a reader that moves its cursor to the
last item it saw skips nothing.

Who may read is decided here: a terminal of the origin agency on this node, or an analyst of a
recipient agency (which is this node's agency); anyone else gets the same NotFound as for an
alert that does not exist.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from blo_exchange.crypto.envelope import OpenedEnvelope, envelope_sha256
from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.ids import utc_now
from blo_exchange.errors import Forbidden, InvalidEnvelope, NotFound
from blo_exchange.services.feed_frames import OpenedFrames
from blo_exchange.services.ports import Directory, Inbox, InboxItem, StoredAlert
from blo_exchange.services.signed import SignedMessages

if TYPE_CHECKING:
    from blo_exchange.services.retention import RetainedNominal

__all__ = ["FeedPage", "FeedService", "LivePage"]

log = logging.getLogger(__name__)


_PAGE = 100
_WINDOW = 1024
"""Items the live window keeps: ten seconds of a busy border's alerts, a few megabytes."""


@dataclass(frozen=True)
class FeedPage:
    items: list[dict[str, Any]]
    next_cursor: int


@dataclass(frozen=True)
class LivePage:
    items: list[tuple[int, str]]
    """(feed position, the item as JSON text)"""
    next_cursor: int


def _json(item: dict[str, Any]) -> str:
    return json.dumps(item, separators=(",", ":"), ensure_ascii=False)


class FeedService:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        inbox: Inbox,
        frames: OpenedFrames | None = None,
    ) -> None:
        self._node = node
        self._kem_keys = kem_keys
        self._directory = directory
        self._signed = SignedMessages(directory, clock=utc_now)
        self._inbox = inbox
        self.frames = OpenedFrames() if frames is None else frames
        self.opens = 0
        """Envelopes this feed verified and opened itself (frames it had to make)."""
        self._opening: dict[tuple[str, int, str], asyncio.Future[str]] = {}
        self._arrived = asyncio.Event()
        self._notified = 0  # how many times notify() was called
        self._loaded = 0  # the value of _notified the window was last loaded up to
        self._loading = asyncio.Lock()
        # The live window: every stored item with _floor < seq <= _head, oldest first, as
        # (seq, JSON text); _floor is None until the first live reader comes.
        self._window: list[tuple[int, str]] = []
        self._window_seqs: list[int] = []
        self._floor: int | None = None
        self._head = 0

    def require_analyst(self, principal: Principal) -> None:
        if principal.role is not Role.ANALYST or principal.agency_id != self._node.agency_id:
            raise Forbidden("only an analyst of this node's agency may read its feed")

    async def stored(self, alerts: Sequence[StoredAlert]) -> None:
        """Delivery's post-store hook: keep the frames of what it has just opened, then wake the
        live feeds. Frames that follow the window's newest item without a gap join the window at
        once (no page read): they were stored under the head's lock, so every lower position was
        committed before them; anything else (a gap: an alert stored by ingest or by another
        process) leaves the window to be loaded from the database as before."""
        fresh: list[tuple[int, str]] = []
        for alert in alerts:
            row = alert.item
            if row.agency_id != self._node.agency_id or row.feed_seq <= 0:
                continue
            text = _json(_item(row, alert.opened))
            self.frames.put(
                (row.agency_id, row.feed_seq),
                text=text,
                envelope_sha256=row.envelope_sha256,
                signature_key_id=alert.signature_key_id,
            )
            fresh.append((row.feed_seq, text))
        in_step = (
            self._floor is not None
            and self._loaded == self._notified
            and not self._loading.locked()
            and bool(fresh)
            and [seq for seq, _ in fresh]
            == list(range(self._head + 1, self._head + 1 + len(fresh)))
        )
        if in_step:
            self._append(fresh)
        await self.notify()
        if in_step:
            self._loaded = self._notified

    async def notify(self) -> None:
        """Called by the delivery consumer after a commit: wakes the live feeds."""
        self._notified += 1
        self._arrived.set()
        self._arrived = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """Until something new may be stored, or ``timeout``; False on timeout."""
        if self._loaded != self._notified:
            return True
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout)
        except TimeoutError:
            return False
        return True

    async def live(self, principal: Principal, *, cursor: int) -> LivePage:
        """The next items after ``cursor`` for a live feed, each already as JSON text.

        Items in the window were verified and opened once, when loaded, for every subscriber;
        a cursor before the window pages the database, verified on read like :meth:`page`.
        """
        self.require_analyst(principal)
        floor = self._floor if self._floor is not None else await self._start_window()
        if cursor >= floor:
            await self._load_window()
            floor = self._floor if self._floor is not None else floor
            if cursor >= floor:  # else the window moved on past a slow reader
                start = bisect.bisect_right(self._window_seqs, cursor)
                return LivePage(items=self._window[start:], next_cursor=max(cursor, self._head))
        page = await self.page(principal, cursor=cursor, limit=_PAGE)
        return LivePage(
            items=[(item["feed_seq"], _json(item)) for item in page.items],
            next_cursor=page.next_cursor if page.items else max(cursor, floor),
        )

    async def _start_window(self) -> int:
        """The window starts empty, after what is stored now; older items are paged."""
        async with self._loading:
            if self._floor is None:
                last = await self._inbox.last_position(self._node.id, self._node.agency_id)
                self._floor = self._head = last
                self._loaded = self._notified - 1  # stored since the query: load them
            return self._floor

    async def _load_window(self) -> None:
        """One page of newly stored items into the window, by one caller at a time."""
        if self._loaded == self._notified:
            return
        async with self._loading:
            if self._loaded == self._notified:
                return
            target = self._notified
            rows = await self._inbox.page(
                self._node.id, self._node.agency_id, after=self._head, limit=_PAGE
            )
            fresh: list[tuple[int, str]] = []
            for row in rows:
                try:
                    fresh.append((row.feed_seq, await self._frame(row)))
                except NotFound:
                    log.warning("stored alert no longer verifies", extra={"seq": row.feed_seq})
            # Nothing above is changed until every await is done: a cancelled caller (a closed
            # stream) leaves the window as it was, and the next caller loads the same page.
            if rows:
                self._head = rows[-1].feed_seq
            self._append(fresh)
            if len(rows) < _PAGE:
                self._loaded = target

    def _append(self, fresh: list[tuple[int, str]]) -> None:
        """Items after the head into the window, the oldest dropped past ``_WINDOW``."""
        if fresh:
            self._head = max(self._head, fresh[-1][0])
        self._window.extend(fresh)
        self._window_seqs.extend(seq for seq, _ in fresh)
        excess = len(self._window) - _WINDOW
        if excess > 0:
            self._floor = self._window_seqs[excess - 1]
            del self._window[:excess], self._window_seqs[:excess]

    async def page(self, principal: Principal, *, cursor: int, limit: int) -> FeedPage:
        self.require_analyst(principal)
        rows = await self._inbox.page(
            self._node.id, self._node.agency_id, after=cursor, limit=limit
        )
        items = [json.loads(await self._frame(row)) for row in rows]
        next_cursor = rows[-1].feed_seq if rows else cursor
        return FeedPage(items=items, next_cursor=next_cursor)

    async def get(self, principal: Principal, alert_id: str) -> dict[str, Any]:
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or not self._may_read(principal, row):
            raise NotFound("no such alert")
        return dict(json.loads(await self._frame(row)))

    async def opened(self, principal: Principal, alert_id: str) -> OpenedEnvelope:
        """The alert opened for ``principal``, who must be allowed to read it (its files are
        opened with the keys in it: ``services.attachments``)."""
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or not self._may_read(principal, row):
            raise NotFound("no such alert")
        try:
            return (await self._signed.open_stored(row, kem_keys=self._kem_keys)).opened
        except InvalidEnvelope as exc:
            raise NotFound("the stored alert no longer verifies") from exc

    async def open_item(self, principal: Principal, row: InboxItem) -> dict[str, Any]:
        """:meth:`get` for a row the caller has already read (the TAXII server pages its own)."""
        if not self._may_read(principal, row):
            raise NotFound("no such alert")
        return dict(json.loads(await self._frame(row)))

    def _may_read(self, principal: Principal, row: InboxItem) -> bool:
        if principal.role is Role.TERMINAL:
            return principal.node_id == self._node.id and row.origin_agency == principal.agency_id
        if principal.role is Role.ANALYST:
            return principal.agency_id == row.agency_id
        return False

    async def nominal_erased(self, erased: RetainedNominal) -> None:
        """The retention sweeper's erasure listener: no frame and no live-window item keeps the
        erased nominal block (the row is opened again, through the retaining inbox, without it)."""
        self.frames.clear()
        row = await self._inbox.get(self._node.id, erased.alert_id)
        if row is None or row.feed_seq not in self._window_seqs:
            return
        text = await self._frame(row)
        self._window = [(seq, text if seq == row.feed_seq else t) for seq, t in self._window]

    async def _frame(self, row: InboxItem) -> str:
        """The row's item as JSON text: its frame, or verified and opened now (once, however
        many callers ask at the same time). ``NotFound`` if it no longer verifies."""
        digest = envelope_sha256(row.envelope)
        key = (row.agency_id, row.feed_seq)
        frame = self.frames.get(key, digest)
        if frame is not None:
            believed = await self._directory.verify_keys("node", row.origin_node, row.created_at)
            if frame.signature_key_id in believed:
                return frame.text
        opening = self._opening.get((*key, digest))
        if opening is None:
            opening = asyncio.ensure_future(self._open(row, digest))
            self._opening[(*key, digest)] = opening
            opening.add_done_callback(lambda done: self._settled((*key, digest), done))
        # Shielded: a reader that goes away (a closed stream) does not cancel the others' open.
        return await asyncio.shield(opening)

    def _settled(self, key: tuple[str, int, str], done: asyncio.Future[str]) -> None:
        self._opening.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too: a failure nobody awaited is not an error

    async def _open(self, row: InboxItem, digest: str) -> str:
        self.opens += 1
        try:
            checked = await self._signed.open_stored(row, kem_keys=self._kem_keys)
        except InvalidEnvelope as exc:
            raise NotFound("the stored alert no longer verifies") from exc
        text = _json(_item(row, checked.opened))
        if row.feed_seq > 0:
            self.frames.put(
                (row.agency_id, row.feed_seq),
                text=text,
                envelope_sha256=digest,
                signature_key_id=checked.verified.signature_key_id,
            )
        return text


def _item(row: InboxItem, opened: OpenedEnvelope) -> dict[str, Any]:
    """What the feed serves of one alert."""
    result: dict[str, Any] = {
        "alert_id": row.alert_id,
        "feed_seq": row.feed_seq,
        "stream_seq": row.stream_seq,
        "header": opened.header,
        "case": json.loads(opened.parts["case"]),
    }
    if "nominal" in opened.parts:
        result["nominal"] = json.loads(opened.parts["nominal"])
    if opened.files:
        result["attachments"] = [
            _file_summary(opened, part)
            for part in sorted(opened.files, key=lambda p: int(p.removeprefix("file-")))
        ]
    return result


def _file_summary(opened: OpenedEnvelope, part: str) -> dict[str, Any]:
    """A file the reader may open, from its sealed card (the thumbnail has its own URL)."""
    card = json.loads(opened.parts[part]) if part in opened.parts else {}
    return {
        "index": int(part.removeprefix("file-")),
        "name": card.get("name"),
        "type": card.get("type"),
        "size": card.get("size"),
        "sha256": card.get("sha256"),
        "nominal": opened.files[part].nominal,
        "thumbnail": card.get("thumbnail") is not None,
    }
