"""Which alerts this process sealed and stored as its node's own copy: in memory, per process.

The ingest path stores its own copy of an alert right after JetStream took it; the node's own
consumer meets the same bytes moments later and need not verify, open and store them again
(``Inbox.sealed_here``). It often meets them *before* that commit: then, if this process is
storing them now (``sealing``, around the publish and the store), the consumer waits for that
(``wait_sealed``) instead of handing the message back to come again a second later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Iterator

__all__ = ["OwnCopies"]


class OwnCopies:
    def __init__(self, *, memory: int = 4096) -> None:
        self._memory = memory
        self._stored: OrderedDict[str, None] = OrderedDict()  # newest last
        self._sealing: dict[str, asyncio.Event] = {}

    def stored(self, envelope_sha256: str) -> None:
        """These bytes are committed as this node's own copy."""
        self._stored[envelope_sha256] = None
        if len(self._stored) > self._memory:
            self._stored.popitem(last=False)

    def __contains__(self, envelope_sha256: object) -> bool:
        return envelope_sha256 in self._stored

    @contextlib.contextmanager
    def sealing(self, envelope_sha256: str) -> Iterator[None]:
        done = self._sealing.setdefault(envelope_sha256, asyncio.Event())
        try:
            yield
        finally:
            self._sealing.pop(envelope_sha256, None)
            done.set()

    async def wait_sealed(self, envelope_sha256: str, timeout: float) -> bool:
        done = self._sealing.get(envelope_sha256)
        if done is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), timeout)
        return envelope_sha256 in self._stored
