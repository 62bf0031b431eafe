"""The upload service over fakes of its ports: parts only at the upload's offset, nothing past
its length, each upload its terminal's own, limits refused before a byte is stored."""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from datetime import datetime, timedelta

import pytest
from PIL import Image

from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.errors import (
    Forbidden,
    NotFound,
    PolicyError,
    UnsupportedMedia,
    UploadOffsetMismatch,
    UploadTooLarge,
)
from blo_exchange.services.ports import UploadRecord
from blo_exchange.services.uploads import UploadLimits, UploadService
from tests.unit.services.world import NOW

NODE = Node(id="blo-karamyk-kg", agency_id="kg-border-service", border_pairs=("KG-TJ",))


def _principal(pid: str, role: Role = Role.TERMINAL) -> Principal:
    return Principal(
        id=pid,
        role=role,
        agency_id=NODE.agency_id,
        node_id=NODE.id if role is Role.TERMINAL else None,
        label=pid,
        created_at=NOW,
    )


class FakeStore:
    def __init__(self) -> None:
        self.rows: dict[str, UploadRecord] = {}
        self.created: dict[str, datetime] = {}

    async def create(self, record: UploadRecord, *, at: datetime) -> None:
        self.rows[record.id] = record
        self.created[record.id] = at

    async def stale(self, node_id: str, before: datetime) -> list[str]:
        return [
            i
            for i, row in self.rows.items()
            if row.state in ("open", "ready") and self.created[i] < before
        ]

    async def expire(self, upload_ids: Sequence[str]) -> None:
        for upload_id in upload_ids:
            self.rows[upload_id] = dataclasses.replace(self.rows[upload_id], state="expired")

    async def get(self, upload_id: str) -> UploadRecord | None:
        return self.rows.get(upload_id)

    async def advance(self, upload_id: str, expected: int, received: int) -> bool:
        row = self.rows[upload_id]
        if row.received != expected:
            return False
        self.rows[upload_id] = dataclasses.replace(row, received=received)
        return True

    async def ready(self, upload_id: str, *, media_type: str, sha256: str, size: int) -> None:
        self.rows[upload_id] = dataclasses.replace(
            self.rows[upload_id], state="ready", media_type=media_type, sha256=sha256, size=size
        )

    async def used(self, upload_ids: Sequence[str]) -> None:
        for upload_id in upload_ids:
            self.rows[upload_id] = dataclasses.replace(self.rows[upload_id], state="used")


class FakeSpool:
    def __init__(self) -> None:
        self.files: dict[tuple[str, str], bytearray] = {}

    def write_at(self, upload_id: str, offset: int, data: bytes) -> None:
        buf = self.files.setdefault((upload_id, "raw"), bytearray())
        buf[offset : offset + len(data)] = data

    def read(self, upload_id: str, name: str = "raw") -> bytes:
        return bytes(self.files.get((upload_id, name), b""))

    def put(self, upload_id: str, name: str, data: bytes) -> None:
        self.files[(upload_id, name)] = bytearray(data)

    def remove(self, upload_id: str) -> None:
        for key in [k for k in self.files if k[0] == upload_id]:
            del self.files[key]


def _service(clock: list[datetime] | None = None) -> tuple[UploadService, FakeSpool]:
    now = clock or [NOW]
    spool = FakeSpool()
    ids = iter(f"{n:032x}" for n in range(1, 100))
    service = UploadService(
        node=NODE,
        store=FakeStore(),
        spool=spool,
        limits=UploadLimits(max_bytes=1_000_000, types=frozenset({"image/png"}), max_files=2),
        clock=lambda: now[0],
        new_id=lambda: next(ids),
        ttl=timedelta(hours=24),
    )
    return service, spool


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (50, 40), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


async def test_parts_go_only_where_the_upload_stands() -> None:
    service, spool = _service()
    officer = _principal("t1")
    data = _png()
    upload = await service.create(
        officer, length=len(data), filename="../../x.png", content_type="image/png"
    )
    assert upload.filename == "x.png"  # no path reaches a partner
    await service.append(officer, upload.id, 0, data[:30])
    with pytest.raises(UploadOffsetMismatch):
        await service.append(officer, upload.id, 0, data[:30])  # sent again after a drop
    with pytest.raises(UploadOffsetMismatch):
        await service.append(officer, upload.id, 40, data[40:])  # a gap
    with pytest.raises(UploadTooLarge):
        await service.append(officer, upload.id, 30, data[30:] + b"extra")
    assert (await service.status(officer, upload.id)).received == 30
    done = await service.append(officer, upload.id, 30, data[30:])
    assert done.state == "ready"
    assert spool.read(upload.id, "thumb")
    [ready] = await service.take(officer, [upload.id])
    assert ready.upload.sha256 == done.sha256
    await service.used([upload.id])
    assert spool.read(upload.id, "file") == b""  # the clear bytes leave the disk
    with pytest.raises(PolicyError):
        await service.take(officer, [upload.id])  # used once


async def test_uploads_are_their_terminals_own_and_limits_hold() -> None:
    service, _ = _service()
    officer, other = _principal("t1"), _principal("t2")
    upload = await service.create(officer, length=10, filename="a.png", content_type="image/png")
    with pytest.raises(NotFound):
        await service.status(other, upload.id)
    with pytest.raises(Forbidden):
        await service.create(
            _principal("a1", Role.ANALYST), length=10, filename="a", content_type="image/png"
        )
    with pytest.raises(UploadTooLarge):
        await service.create(officer, length=1_000_001, filename="a", content_type="image/png")
    with pytest.raises(UnsupportedMedia):
        await service.create(officer, length=10, filename="a", content_type="image/gif")
    with pytest.raises(PolicyError):
        await service.take(officer, [upload.id])  # not complete
    with pytest.raises(PolicyError):
        await service.take(officer, ["0" * 32, "1" * 32, "2" * 32])  # over the per-alert limit


async def test_an_upload_never_sealed_leaves_the_disk_after_its_time_to_live() -> None:
    clock = [NOW]
    service, spool = _service(clock)
    officer = _principal("t1")
    data = _png()
    upload = await service.create(
        officer, length=len(data), filename="a.png", content_type="image/png"
    )
    await service.append(officer, upload.id, 0, data)
    clock[0] = NOW + timedelta(hours=23)
    assert await service.expire() == 0  # not yet
    clock[0] = NOW + timedelta(hours=25)
    assert await service.expire() == 1
    assert spool.read(upload.id, "file") == b""
    with pytest.raises(PolicyError):
        await service.take(officer, [upload.id])  # it can no longer be sealed
