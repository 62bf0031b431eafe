"""How the pages travel over a slow, metered link: static files under content-hashed names that
browsers keep for a year, and compressed responses.

``/static/app.3f2a9c1e.css`` is ``static/app.css`` whose SHA-256 begins ``3f2a9c1e``: a changed
file gets a new name, so the old one may be cached ``immutable``. A name with a stale or no hash
still serves the current file, but only ``no-cache`` (revalidated by its ETag), so a page from an
older release never breaks. Templates ask for a name with ``asset("app.css")``.

Compression is gzip for every response of the app (the JSON API too) except Server-Sent Events,
which must reach the reader event by event (Starlette's GZipMiddleware leaves
``text/event-stream`` alone). Compressing pages that carry a CSRF token next to reflected input
is what BREACH attacks; they need the victim's cookie on attacker-chosen requests, which the
``SameSite=Strict`` session cookie withholds.

Not here: the pages' own ``Cache-Control`` (``no-store``, set for every other response by the
API's security headers).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Final

from fastapi import FastAPI
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["IMMUTABLE", "VersionedStatic", "install_assets"]

IMMUTABLE: Final = "public, max-age=31536000, immutable"
REVALIDATE: Final = "no-cache"
GZIP_MIN_BYTES: Final = 500  # below this, the gzip header costs about what it saves

_HASHED: Final = re.compile(r"(?P<stem>[^/]+)\.(?P<hash>[0-9a-f]{8})(?P<ext>\.[a-z0-9]+)")


def _digests(directory: Path) -> dict[str, str]:
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:8]
        for path in sorted(directory.iterdir())
        if path.is_file()
    }


class VersionedStatic(StaticFiles):
    """Static files that answer both ``app.css`` and ``app.<hash>.css``."""

    def __init__(self, *, directory: Path) -> None:
        super().__init__(directory=directory)
        self.digests: Mapping[str, str] = _digests(directory)

    def url(self, name: str) -> str:
        digest = self.digests[name]  # a KeyError names a template's typo at once
        stem, dot, ext = name.rpartition(".")
        return f"/static/{stem}.{digest}{dot}{ext}"

    async def get_response(self, path: str, scope: Scope) -> Response:
        name, current = path, False
        match = _HASHED.fullmatch(path)
        if match and (plain := match["stem"] + match["ext"]) in self.digests:
            name, current = plain, self.digests[plain] == match["hash"]
        response = await super().get_response(name, scope)
        if response.status_code in (200, 304):
            response.headers["Cache-Control"] = IMMUTABLE if current else REVALIDATE
        return response


def install_assets(app: FastAPI, directory: Path) -> VersionedStatic:
    """Mount ``directory`` at ``/static`` and compress the app's responses."""
    static = VersionedStatic(directory=directory)
    app.mount("/static", static, name="static")
    app.add_middleware(GZipMiddleware, minimum_size=GZIP_MIN_BYTES, compresslevel=6)
    return static
