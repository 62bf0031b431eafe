"""What a node accepts as a file: the type its bytes say, a photo without its location (unless
kept on purpose), a thumbnail; a decompression bomb and a lying file refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from blo_exchange.errors import UnsupportedMedia
from blo_exchange.services.media import prepare_file, sniff

ALL = {"image/jpeg", "image/png", "image/webp", "application/pdf"}


def _image(fmt: str, size: tuple[int, int] = (400, 300), *, gps: bool = True) -> bytes:
    image = Image.new("RGB", size, (120, 30, 200))
    exif = Image.Exif()
    exif[0x010F] = "Camera"
    if gps:
        exif[0x8825] = {1: "N", 2: (41.0, 20.0, 0.0)}
    out = io.BytesIO()
    image.save(out, format=fmt, exif=exif.tobytes())
    return out.getvalue()


@pytest.mark.parametrize(
    ("fmt", "media"), [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]
)
def test_a_photo_loses_its_location_keeps_the_rest_and_gets_a_thumbnail(
    fmt: str, media: str
) -> None:
    data = _image(fmt)
    assert sniff(data) == media
    prepared = prepare_file(data, declared=media, allowed=ALL, keep_location=False)
    exif = Image.open(io.BytesIO(prepared.data)).getexif()
    assert 0x8825 not in exif
    assert exif[0x010F] == "Camera"
    assert prepared.thumbnail is not None
    assert max(Image.open(io.BytesIO(prepared.thumbnail)).size) <= 160


def test_the_officer_may_keep_the_location_on_purpose() -> None:
    data = _image("JPEG")
    prepared = prepare_file(data, declared="image/jpeg", allowed=ALL, keep_location=True)
    assert prepared.data == data


def test_a_pdf_is_kept_as_it_is_with_no_thumbnail() -> None:
    data = b"%PDF-1.7\n" + bytes(range(256)) * 10
    prepared = prepare_file(data, declared="application/pdf", allowed=ALL, keep_location=False)
    assert prepared.data == data
    assert prepared.thumbnail is None


@pytest.mark.parametrize(
    ("data", "declared", "allowed"),
    [
        (b"MZ\x90\x00 an executable", "image/jpeg", ALL),  # no accepted type at all
        (b"%PDF-1.4 a scan", "image/jpeg", ALL),  # a PDF that says it is a photo
        (_image("PNG"), "image/png", {"image/jpeg"}),  # a type this node does not take
        (b"\xff\xd8\xff\xe0 truncated jpeg", "image/jpeg", ALL),  # does not decode
    ],
    ids=["unknown", "lying", "not-accepted", "broken"],
)
def test_refused_files(data: bytes, declared: str, allowed: set[str]) -> None:
    with pytest.raises(UnsupportedMedia):
        prepare_file(data, declared=declared, allowed=allowed, keep_location=False)


def test_a_decompression_bomb_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("blo_exchange.services.media.MAX_PIXELS", 10_000)
    with pytest.raises(UnsupportedMedia):
        prepare_file(
            _image("PNG", (200, 200)), declared="image/png", allowed=ALL, keep_location=False
        )
