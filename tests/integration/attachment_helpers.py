"""Uploading files through a node's API, for the attachment tests and the bench."""

from __future__ import annotations

import io
import os
import uuid
from typing import Any

import httpx
from PIL import Image

PART = 1024 * 1024
PART_TYPE = "application/offset+octet-stream"


def photo(min_bytes: int, *, gps: bool = False, seed: int = 0) -> bytes:
    """A JPEG of noise at least ``min_bytes`` long (noise does not compress), EXIF with a GPS
    position when ``gps``."""
    side = 256
    while True:
        rng = __import__("random").Random(seed)
        pixels = rng.randbytes(side * side * 3)
        image = Image.frombytes("RGB", (side, side), pixels)
        exif = Image.Exif()
        exif[0x010F] = "Test camera"
        if gps:
            exif[0x8825] = {1: "N", 2: (41.0, 20.0, 0.0), 3: "E", 4: (69.0, 15.0, 0.0)}
        out = io.BytesIO()
        image.save(out, format="JPEG", quality=100, exif=exif.tobytes())
        if out.tell() >= min_bytes:
            return out.getvalue()
        side = int(side * 1.4)


def pdf(size: int = 2000) -> bytes:
    return b"%PDF-1.4\n" + os.urandom(size) + b"\n%%EOF\n"


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **fields: Any
) -> httpx.Response:
    body = {"length": len(data), "filename": "photo.jpg", "content_type": "image/jpeg"} | fields
    return await client.post("/v1/uploads", json=body, headers=headers)


async def send_part(
    client: httpx.AsyncClient, headers: dict[str, str], upload_id: str, offset: int, part: bytes
) -> httpx.Response:
    return await client.patch(
        f"/v1/uploads/{upload_id}",
        content=part,
        headers=headers | {"Upload-Offset": str(offset), "Content-Type": PART_TYPE},
    )


async def upload(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **fields: Any
) -> dict[str, Any]:
    """Create and send ``data`` in parts; the upload's final status."""
    created = await create(client, headers, data, **fields)
    assert created.status_code == 201, created.text
    upload_id = created.json()["upload_id"]
    status: dict[str, Any] = created.json()
    for offset in range(0, len(data), PART):
        response = await send_part(client, headers, upload_id, offset, data[offset : offset + PART])
        assert response.status_code == 200, response.text
        status = response.json()
    return status


def idempotency() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}
