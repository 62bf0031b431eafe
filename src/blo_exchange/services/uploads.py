"""An officer's upload of a photo or scan, resumable after a dropped link, checked and made
ready to seal with an alert.

The protocol (docs/contracts/api.md, "Uploads") is chunked parts with offsets, like tus: create
an upload with its length; send parts, each saying the offset it starts at; after a drop, ask
where the upload stands and send from there. A part that does not start there is refused
(``UploadOffsetMismatch``), so nothing is written twice or skipped. The last part makes the file
complete: its type is checked and, for a photo, its location stripped and its thumbnail made
(``services.media``); only then may an alert name it.

Only a terminal of this node uploads, and each upload is its own: another principal's upload id
gets the same ``NotFound`` as an unknown one. Limits (size, types, files per alert) are the
node's settings. An upload never sealed is deleted after its time to live (:meth:`expire`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import PurePosixPath, PureWindowsPath

from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.errors import (
    Forbidden,
    NotFound,
    PolicyError,
    UnsupportedMedia,
    UploadError,
    UploadOffsetMismatch,
    UploadTooLarge,
)
from blo_exchange.services.media import prepare_file
from blo_exchange.services.ports import UploadRecord, UploadSpool, UploadStore

__all__ = ["ReadyFile", "UploadLimits", "UploadService"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UploadLimits:
    max_bytes: int
    types: frozenset[str]
    max_files: int


@dataclass(frozen=True)
class ReadyFile:
    """A complete, checked upload: the bytes to seal and the photo's thumbnail."""

    upload: UploadRecord
    data: bytes = field(repr=False)
    thumbnail: bytes | None = field(repr=False)


def _clean_name(filename: str) -> str:
    """The last path component, printable, at most 120 characters (it is shown to partners)."""
    name = PureWindowsPath(PurePosixPath(filename).name).name
    name = "".join(c for c in name if c.isprintable()).strip()
    return name[:120] or "file"


class UploadService:
    def __init__(
        self,
        *,
        node: Node,
        store: UploadStore,
        spool: UploadSpool,
        limits: UploadLimits,
        clock: Callable[[], datetime],
        new_id: Callable[[], str] = lambda: secrets.token_hex(16),
        ttl: timedelta = timedelta(hours=24),
    ) -> None:
        self._node = node
        self._ttl = ttl
        self._stopped = asyncio.Event()
        self._store = store
        self._spool = spool
        self.limits = limits
        self._clock = clock
        self._new_id = new_id

    def _authorize(self, principal: Principal) -> None:
        if principal.role is not Role.TERMINAL or principal.node_id != self._node.id:
            raise Forbidden("only a terminal of this node may upload attachments")

    async def create(
        self,
        principal: Principal,
        *,
        length: int,
        filename: str,
        content_type: str,
        nominal: bool = False,
        keep_location: bool = False,
    ) -> UploadRecord:
        """A new, empty upload of ``length`` bytes; refused when too large or of a type the
        node does not accept."""
        self._authorize(principal)
        if length < 1:
            raise UploadError("an upload has at least one byte")
        if length > self.limits.max_bytes:
            raise UploadTooLarge(f"larger than this node's limit of {self.limits.max_bytes} bytes")
        if content_type not in self.limits.types:
            raise UnsupportedMedia(
                f"{content_type} is not accepted here: {', '.join(sorted(self.limits.types))}"
            )
        record = UploadRecord(
            id=self._new_id(),
            node_id=self._node.id,
            principal_id=principal.id,
            length=length,
            received=0,
            filename=_clean_name(filename),
            declared_type=content_type,
            nominal=nominal,
            keep_location=keep_location,
        )
        self._spool.put(record.id, "name", record.filename.encode())
        await self._store.create(record, at=self._clock())
        return record

    async def status(self, principal: Principal, upload_id: str) -> UploadRecord:
        self._authorize(principal)
        record = await self._store.get(upload_id)
        if record is None or record.principal_id != principal.id:
            raise NotFound("no such upload")
        return self._named(record)

    def _named(self, record: UploadRecord) -> UploadRecord:
        """The record with its file name, kept beside its bytes rather than in the store."""
        name = self._spool.read(record.id, "name").decode("utf-8", "replace")
        return dataclasses.replace(record, filename=name or "file")

    async def append(
        self, principal: Principal, upload_id: str, offset: int, data: bytes
    ) -> UploadRecord:
        """Write ``data`` at ``offset``, which must be where the upload stands."""
        record = await self.status(principal, upload_id)
        if record.state != "open" or offset != record.received:
            raise UploadOffsetMismatch(f"the upload stands at {record.received}, not {offset}")
        end = offset + len(data)
        if end > record.length:
            raise UploadTooLarge(f"more bytes than the {record.length} announced")
        self._spool.write_at(upload_id, offset, data)
        # The offset moves only from where this request found it: a concurrent part lost.
        if not await self._store.advance(upload_id, offset, end):
            raise UploadOffsetMismatch("another part moved the upload meanwhile")
        record = await self.status(principal, upload_id)
        if end == record.length:
            record = await self._finish(record)
        return record

    async def _finish(self, record: UploadRecord) -> UploadRecord:
        prepared = prepare_file(
            self._spool.read(record.id),
            declared=record.declared_type,
            allowed=self.limits.types,
            keep_location=record.keep_location,
        )
        self._spool.put(record.id, "file", prepared.data)
        if prepared.thumbnail is not None:
            self._spool.put(record.id, "thumb", prepared.thumbnail)
        digest = hashlib.sha256(prepared.data).hexdigest()
        await self._store.ready(
            record.id, media_type=prepared.media_type, sha256=digest, size=len(prepared.data)
        )
        found = await self._store.get(record.id)
        assert found is not None
        return self._named(found)

    async def take(self, principal: Principal, upload_ids: Sequence[str]) -> list[ReadyFile]:
        """The files an alert names, complete and this principal's, in the order named."""
        if len(upload_ids) > self.limits.max_files:
            raise PolicyError(f"at most {self.limits.max_files} attachments per alert")
        if len(set(upload_ids)) != len(upload_ids):
            raise PolicyError("an upload is named twice")
        ready: list[ReadyFile] = []
        for upload_id in upload_ids:
            try:
                record = await self.status(principal, upload_id)
            except NotFound:
                raise PolicyError(f"attachments: no upload {upload_id}") from None
            if record.state != "ready":
                raise PolicyError(f"attachments: upload {upload_id} is not complete")
            thumb = self._spool.read(upload_id, "thumb")
            ready.append(
                ReadyFile(
                    upload=record,
                    data=self._spool.read(upload_id, "file"),
                    thumbnail=thumb or None,
                )
            )
        return ready

    async def used(self, upload_ids: Sequence[str]) -> None:
        """Sealed with an alert: the clear bytes leave the disk."""
        if upload_ids:
            await self._store.used(upload_ids)
            for upload_id in upload_ids:
                self._spool.remove(upload_id)

    async def expire(self) -> int:
        """Delete the uploads never sealed within the time to live: their clear bytes leave the
        disk, and their ids can no longer be named. The number expired."""
        stale = await self._store.stale(self._node.id, self._clock() - self._ttl)
        for upload_id in stale:
            self._spool.remove(upload_id)
        if stale:
            await self._store.expire(stale)
        return len(stale)

    async def run(self, every: float) -> None:
        """Expire uploads every ``every`` seconds until stopped; a failed pass is retried."""
        while not self._stopped.is_set():
            try:
                await self.expire()
            except Exception as exc:  # a database outage: the next pass tries again
                log.warning("upload expiry failed: %s", type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopped.wait(), every)

    def stop(self) -> None:
        self._stopped.set()
