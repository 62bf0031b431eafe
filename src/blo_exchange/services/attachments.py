"""Attachments after sealing: the origin pushes their ciphertexts to the bucket, each recipient
fetches the ones it may open, checks them against the signed envelope and keeps them sealed.

(1) The origin keeps every file part's ciphertext with its alert (``keep``), *before* the alert
    is published, and a background pass pushes each to the bucket until it is acknowledged
    (``push_pending``): a crash, a NATS outage or a leaf site's cut link delays a file, never
    loses it, and the alert (with its inline thumbnails) never waits for its files.
(2) A recipient, once the alert is stored (``expect``, called by delivery), records the file
    parts *its agency was given a key for* — a passport scan sealed only to agencies with
    nominal rights is never even fetched elsewhere — and a background pass fetches each
    (``fetch_pending``). Fewer bytes than signed: not yet here, asked again next pass. A
    ciphertext whose size or SHA-256 is not the signed one is refused, logged and kept as
    ``refused`` with its reason, never stored or served. A nominal file's ciphertext is
    sealed under its alert's retention vault (``NominalFileVault``) before it is stored, so the
    database opens it only while the alert's epoch key exists.
(3) Reading (``file``, ``thumbnail``) opens the stored ciphertext with the key from the alert the
    caller was allowed to open (``FeedService.opened``), and checks it again. A **nominal** file
    is served only with its card: at a recipient the card is kept in the retention vault
    (``services.retention``) and is gone once the retention ended, and then the file and its
    thumbnail are ``AttachmentErased`` (410), whatever bytes might linger.
(4) Erasure (``nominal_erased``, an erasure listener of ``services.retention_sweep``): the
    recipient deletes its nominal files' records and ciphertexts.

Not here: who may read an alert (the feed decides), the bucket's permissions (``bus``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from blo_exchange.crypto.canonical import b64u_decode, b64u_encode, canonical_json, sha256_hex
from blo_exchange.crypto.envelope import OpenedEnvelope
from blo_exchange.crypto.files import FilePart, SealedAlert
from blo_exchange.domain.directory import Node
from blo_exchange.errors import AttachmentErased, AttachmentPending, InvalidEnvelope, NotFound
from blo_exchange.services.ports import AttachmentObjects, AttachmentRecord, AttachmentStore
from blo_exchange.services.retention import RetainedNominal
from blo_exchange.services.uploads import ReadyFile

__all__ = [
    "AttachmentFile",
    "AttachmentService",
    "NominalFileVault",
    "download_headers",
    "file_parts",
]

log = logging.getLogger(__name__)
_BATCH = 16
_SOON = 0.05  # the first wait for a file that was just announced
_ERASED = "this personal-data file was erased here when its retention ended"


def file_parts(files: Sequence[ReadyFile]) -> list[FilePart]:
    """What the envelope seals for each upload: a card (shown before the file arrives) and the
    file. The card names the file, its type, size and SHA-256, and carries the thumbnail."""
    parts = []
    for ready in files:
        upload = ready.upload
        card = {
            "name": upload.filename,
            "type": upload.media_type,
            "size": len(ready.data),
            "sha256": sha256_hex(ready.data),
            "thumbnail": None if ready.thumbnail is None else b64u_encode(ready.thumbnail),
        }
        parts.append(FilePart(card=canonical_json(card), data=ready.data, nominal=upload.nominal))
    return parts


@dataclass(frozen=True)
class AttachmentFile:
    name: str
    media_type: str
    data: bytes = field(repr=False)


class NominalFileVault(Protocol):
    """Where a recipient keeps its nominal files' ciphertexts crypto-shreddable
    (``services.retention_files.NominalFiles``)."""

    async def seal(self, alert_id: str, part: str, ciphertext: bytes) -> bytes | None:
        """What to store; None when the file's retention ended here (store nothing)."""
        ...

    async def open(self, alert_id: str, part: str, stored: bytes) -> bytes | None:
        """The ciphertext back; None once the retention ended."""
        ...


class AttachmentService:
    def __init__(
        self,
        *,
        node: Node,
        store: AttachmentStore,
        objects: AttachmentObjects,
        vault: NominalFileVault | None = None,
    ) -> None:
        self._node = node
        self._store = store
        self._objects = objects
        self._vault = vault
        self.counts: Counter[str] = Counter()
        self._wake = asyncio.Event()
        self._stopped = False

    def stop(self) -> None:
        """End :meth:`run` after its pass in hand."""
        self._stopped = True
        self._wake.set()

    # (1) the origin ------------------------------------------------------------------------

    async def keep(self, alert_id: str, sealed: SealedAlert, nominal: Sequence[bool]) -> None:
        """The origin's copy of each file part's ciphertext, to push and to serve."""
        records = [
            AttachmentRecord(
                node_id=self._node.id,
                alert_id=alert_id,
                part=part,
                origin_node=self._node.id,
                sha256=sha256_hex(data),
                size=len(data),
                nominal=nominal[int(part.removeprefix("file-")) - 1],
                state="stored",
            )
            for part, data in sealed.files.items()
        ]
        await self._store.add(records, dict(sealed.files))
        self._wake.set()

    async def push_pending(self) -> int:
        """Push every stored file not yet in the bucket, one at a time (each is up to the
        node's size limit: never several in memory at once)."""
        pushed = 0
        while batch := await self._store.to_push(self._node.id, 1):
            [(record, data)] = batch
            await self._objects.put(self._node.id, record.sha256, data)
            await self._store.pushed(record)
            self.counts["pushed"] += 1
            pushed += 1
        return pushed

    # (2) a recipient -----------------------------------------------------------------------

    async def expect(self, alert_id: str, origin_node: str, opened: OpenedEnvelope) -> None:
        """Record the file parts this agency may open, to fetch (delivery, after storing)."""
        records = [
            AttachmentRecord(
                node_id=self._node.id,
                alert_id=alert_id,
                part=part,
                origin_node=origin_node,
                sha256=manifest.sha256,
                size=manifest.size,
                nominal=manifest.nominal,
                pushed=True,
            )
            for part, manifest in opened.files.items()
        ]
        await self._store.add(records, {})
        if records:
            self._wake.set()

    async def fetch_pending(self) -> int:
        """Fetch what has arrived; the number of files stored, or moved on, this pass."""
        fetched = 0
        for record in await self._store.to_fetch(self._node.id, _BATCH):
            found = await self._objects.fetch(record.origin_node, record.sha256, record.size)
            data = found.data
            if data is None:
                # Not (all) here yet: a leaf site's link, or the origin still pushing. A file
                # on its way counts as progress: the next pass comes soon.
                fetched += found.grew
                continue
            if len(data) != record.size or sha256_hex(data) != record.sha256:
                log.warning(
                    "attachment refused",
                    extra={"alert_id": record.alert_id, "part": record.part, "reason": "file_hash"},
                )
                await self._store.refuse(record, "file_hash")
                self.counts["refused"] += 1
                continue
            if record.nominal and self._vault is not None:
                sealed = await self._vault.seal(record.alert_id, record.part, data)
                if sealed is None:  # its retention ended before it arrived: never kept
                    await self._store.refuse(record, "nominal_erased")
                    self.counts["erased"] += 1
                    continue
                data = sealed
            await self._store.store(record, data)
            self.counts["fetched"] += 1
            fetched += 1
        return fetched

    async def run(self, interval: float) -> None:
        """Push and fetch until stopped; a failed pass is logged and tried again. While a file
        is awaited, passes come sooner (from 0.05 s, doubling up to ``interval``)."""
        pause = interval
        while not self._stopped:
            moving = False
            try:
                await self.push_pending()
                moving = await self.fetch_pending() > 0
                waiting = bool(await self._store.to_fetch(self._node.id, 1))
            except Exception as exc:  # a database or NATS outage: the next pass tries again
                log.warning("attachment pass failed: %s", type(exc).__name__)
                waiting = False
            pause = (
                _SOON if moving and waiting else min(pause * 2, interval) if waiting else interval
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), pause)
            if self._wake.is_set():
                pause = _SOON
            self._wake.clear()

    # (3) reading ---------------------------------------------------------------------------

    async def listing(self, alert_id: str, opened: OpenedEnvelope) -> list[dict[str, Any]]:
        """Each file the opened alert lets its reader open: its card and whether it is here."""
        states = {
            (r.part, r.sha256): r.state for r in await self._store.of_alert(self._node.id, alert_id)
        }
        listing = []
        for part, manifest in sorted(opened.files.items(), key=lambda kv: _index(kv[0])):
            card = _card(opened, part)
            listing.append(
                {
                    "part": part,
                    "index": _index(part),
                    "name": card.get("name"),
                    "type": card.get("type"),
                    "size": card.get("size"),
                    "sha256": card.get("sha256"),
                    "nominal": manifest.nominal,
                    "thumbnail": card.get("thumbnail") is not None,
                    "state": "erased"
                    if _erased(opened, part)
                    else states.get((part, manifest.sha256), "pending"),
                }
            )
        return listing

    async def file(self, alert_id: str, opened: OpenedEnvelope, index: int) -> AttachmentFile:
        part = f"file-{index}"
        manifest = opened.files.get(part)
        if manifest is None:
            raise NotFound("no such attachment")
        if _erased(opened, part):
            raise AttachmentErased(_ERASED)
        card = _card(opened, part)
        ciphertext = await self._store.ciphertext(self._node.id, alert_id, part, manifest.sha256)
        if ciphertext is None:
            raise AttachmentPending("the file has not arrived yet (or was refused)")
        if manifest.nominal and self._vault is not None:
            ciphertext = await self._vault.open(alert_id, part, ciphertext)
            if ciphertext is None:
                raise AttachmentErased(_ERASED)
        try:
            data = opened.open_file(part, ciphertext)
        except InvalidEnvelope:
            raise NotFound("the stored attachment no longer verifies") from None
        return AttachmentFile(
            name=str(card.get("name") or part),
            media_type=str(card.get("type") or "application/octet-stream"),
            data=data,
        )

    def thumbnail(self, opened: OpenedEnvelope, index: int) -> bytes:
        part = f"file-{index}"
        if part not in opened.files:
            raise NotFound("no such attachment")
        if _erased(opened, part):
            raise AttachmentErased(_ERASED)
        encoded = _card(opened, part).get("thumbnail")
        if not isinstance(encoded, str):
            raise NotFound("this attachment has no thumbnail")
        return b64u_decode(encoded)

    # (4) erasure ----------------------------------------------------------------------------

    async def nominal_erased(self, row: RetainedNominal) -> None:
        """Delete the nominal files of ``row``'s alert at this node, records and ciphertexts;
        idempotent."""
        forgotten = await self._store.forget_nominal(row.node_id, row.alert_id)
        self.counts["erased"] += forgotten


def _erased(opened: OpenedEnvelope, part: str) -> bool:
    """A nominal file whose card this reader cannot open: its retention ended here (or a relay
    stripped the card in transit, which the node cannot tell apart: it fails closed)."""
    manifest = opened.files.get(part)
    return manifest is not None and manifest.nominal and part not in opened.parts


def _index(part: str) -> int:
    return int(part.removeprefix("file-"))


def _card(opened: OpenedEnvelope, part: str) -> dict[str, Any]:
    """The part's card, or an empty one when it was redacted in transit."""
    raw = opened.parts.get(part)
    if raw is None:
        return {}
    card = json.loads(raw)
    return card if isinstance(card, dict) else {}


def download_headers(name: str, media_type: str) -> dict[str, str]:
    """The HTTP headers a file is served with, by the API and the pages alike: a download,
    never rendered inline from the node's origin."""
    ascii_name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:100] or "file"
    return {
        "Content-Type": media_type,
        "Content-Disposition": (
            f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
        ),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "sandbox; default-src 'none'",
        "Cache-Control": "no-store",
    }
