"""Opened alerts shared by every reader of a node's feed: one decryption per alert per node.

A frame is one stored alert as the feed serves it (the item as JSON text), under its agency and
feed position, with the digest of the sealed bytes it was opened from and the id of the key that
signed them. Delivery's post-store hook fills it with the alert it has just verified and opened;
the feed fills it when it has to open a stored row itself. Every live stream, catch-up page and
single read then takes the frame instead of verifying and opening the envelope again.

Bounded: at most ``max_items`` frames and ``max_bytes`` of text, the least recently used dropped
first; a frame older than ``max_age`` seconds is not served (the row is verified and opened
again). In memory only, never written anywhere: plaintext, like the feed's answers themselves.

Not here: who may read a frame (``FeedService`` checks the principal, and that the row is its
agency's, before any frame is served), and whether the signing key is still believed (the feed
asks the directory on every hit).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

__all__ = ["Frame", "FrameKey", "OpenedFrames"]

FrameKey = tuple[str, int]
"""(agency id, feed position)"""


@dataclass(frozen=True)
class Frame:
    text: str
    envelope_sha256: str
    signature_key_id: str
    opened_at: float


class OpenedFrames:
    def __init__(
        self,
        *,
        max_items: int = 4096,
        max_bytes: int = 16 * 1024 * 1024,
        max_age: float = 600.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._frames: OrderedDict[FrameKey, Frame] = OrderedDict()
        self._max_items = max_items
        self._max_bytes = max_bytes
        self._max_age = max_age
        self._clock = clock
        self.size_bytes = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._frames)

    def put(self, key: FrameKey, *, text: str, envelope_sha256: str, signature_key_id: str) -> None:
        self._drop(key)
        frame = Frame(text, envelope_sha256, signature_key_id, self._clock())
        self._frames[key] = frame
        self.size_bytes += len(text)
        while self._frames and (
            len(self._frames) > self._max_items or self.size_bytes > self._max_bytes
        ):
            self._drop(next(iter(self._frames)))

    def get(self, key: FrameKey, envelope_sha256: str) -> Frame | None:
        """The frame opened from exactly these sealed bytes, if still young enough."""
        frame = self._frames.get(key)
        if (
            frame is None
            or frame.envelope_sha256 != envelope_sha256
            or self._clock() - frame.opened_at > self._max_age
        ):
            self.misses += 1
            return None
        self._frames.move_to_end(key)
        self.hits += 1
        return frame

    def clear(self) -> None:
        """Forget every frame (a nominal block was erased: no plaintext of it may outlive it)."""
        self._frames.clear()
        self.size_bytes = 0

    def _drop(self, key: FrameKey) -> None:
        old = self._frames.pop(key, None)
        if old is not None:
            self.size_bytes -= len(old.text)
