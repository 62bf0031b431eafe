"""What a node accepts as an attachment, and the two things it does to a photo: strip its
location and make a thumbnail.

The type is decided by the file's first bytes, never by the name or the declared type alone
(a declared type that disagrees is refused). Images are decoded with Pillow under a pixel limit
(a decompression bomb is refused) and, unless the officer asked to keep it, re-encoded without
the EXIF GPS block (the rest of EXIF is kept: time, camera, orientation). A PDF is accepted as it
is and never parsed or rendered on the server, so it has no thumbnail.

Pillow is a pure image codec (no I/O of its own), imported here like ``json``; the layer rule
keeps frameworks out of ``services``, not codecs.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Final

from PIL import Image, UnidentifiedImageError

from blo_exchange.errors import UnsupportedMedia

__all__ = ["IMAGE_TYPES", "PreparedFile", "prepare_file", "sniff"]

IMAGE_TYPES: Final = frozenset({"image/jpeg", "image/png", "image/webp"})
THUMBNAIL_PX: Final = 160
MAX_PIXELS: Final = 60_000_000  # a 60 MP photo decodes; a crafted bomb does not
_GPS_IFD: Final = 0x8825
_FORMATS: Final = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP"}


@dataclass(frozen=True)
class PreparedFile:
    data: bytes = field(repr=False)
    media_type: str
    thumbnail: bytes | None = field(default=None, repr=False)


def sniff(data: bytes) -> str | None:
    """The media type the first bytes say, among those a node may accept."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def prepare_file(
    data: bytes, *, declared: str, allowed: Collection[str], keep_location: bool
) -> PreparedFile:
    """The file as it will be sealed, and its thumbnail; ``UnsupportedMedia`` if refused."""
    media_type = sniff(data)
    if media_type is None or media_type not in allowed:
        raise UnsupportedMedia(f"not a file type this node accepts ({', '.join(sorted(allowed))})")
    if declared != media_type:
        raise UnsupportedMedia(f"declared {declared}, but the file is {media_type}")
    if media_type not in IMAGE_TYPES:
        return PreparedFile(data=data, media_type=media_type)
    image = _decode(data)
    kept = data if keep_location else _without_location(image, media_type)
    return PreparedFile(data=kept, media_type=media_type, thumbnail=_thumbnail(image))


def _decode(data: bytes) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image.load()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,
        SyntaxError,
    ) as exc:
        raise UnsupportedMedia(f"the image does not decode: {type(exc).__name__}") from None
    return image


def _without_location(image: Image.Image, media_type: str) -> bytes:
    exif = image.getexif()
    if _GPS_IFD in exif:
        del exif[_GPS_IFD]
    out = io.BytesIO()
    options: dict[str, object] = {"exif": exif.tobytes()}
    if media_type == "image/jpeg":
        options["quality"] = "keep"  # the source's quantisation: no second generation loss
    elif media_type == "image/webp":
        options["lossless"] = True
    image.save(out, format=_FORMATS[media_type], **options)
    return out.getvalue()


def _thumbnail(image: Image.Image) -> bytes:
    small = image.copy()
    small.thumbnail((THUMBNAIL_PX, THUMBNAIL_PX))
    out = io.BytesIO()
    small.convert("RGB").save(out, format="JPEG", quality=70)
    return out.getvalue()
