"""Where officers' uploads wait on the node's disk until sealed with an alert.

One directory (0700) per node; per upload, ``<id>.name`` (the file's name, which may name a
person), ``<id>.raw`` (the bytes as received, written at the offset the client says, so a
resumed upload continues the same file) and, once it is complete, ``<id>.file`` and
``<id>.thumb`` (what will be sealed). Files are 0600 and removed when the
alert is sealed. This is the one place an attachment exists in clear outside a process's memory,
and only at the origin, for the length of the upload: the database and NATS never see it.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

__all__ = ["FileSpool"]

_ID = re.compile(r"[0-9a-f]{32}")
_NAMES = ("raw", "file", "thumb", "name")


class FileSpool:
    def __init__(self, root: Path) -> None:
        root.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root, 0o700)
        self._root = root

    def _path(self, upload_id: str, name: str) -> Path:
        if not _ID.fullmatch(upload_id) or name not in _NAMES:
            raise ValueError("bad upload id or file name")
        return self._root / f"{upload_id}.{name}"

    def write_at(self, upload_id: str, offset: int, data: bytes) -> None:
        path = self._path(upload_id, "raw")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            os.pwrite(fd, data, offset)
            os.fsync(fd)  # the offset the client is told is on disk
        finally:
            os.close(fd)

    def read(self, upload_id: str, name: str = "raw") -> bytes:
        path = self._path(upload_id, name)
        return path.read_bytes() if path.exists() else b""

    def put(self, upload_id: str, name: str, data: bytes) -> None:
        path = self._path(upload_id, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(data)

    def remove(self, upload_id: str) -> None:
        for name in _NAMES:
            self._path(upload_id, name).unlink(missing_ok=True)
