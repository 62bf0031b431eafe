"""The attachment bucket: sealed attachment ciphertexts in a NATS Object Store, written so
that a node can put only its own objects and nobody can delete, purge or replace one.

Layout (an Object Store bucket, readable by ``nats object ls BLO_ATTACHMENTS``): an object is
named ``<origin node>/<ciphertext SHA-256>``; its chunks are published on
``$O.BLO_ATTACHMENTS.C.<origin node>.<sha256>``, each with a ``Blo-Offset`` header, and its
object info on ``$O.BLO_ATTACHMENTS.M.<base64url(name)>`` last, as nats-py's ``put`` does.
The differences from nats-py's ``ObjectStore.put``, and why:

- the chunk subject is derived from the owner and the hash, not a random NUID, so the server's
  permissions let a node publish chunks only under its own id (``bus.permissions``) and a
  reader finds them from the signed envelope alone;
- no ``Nats-Rollup`` header (the stream denies rollups, deletes and purges, so a second put of
  a name can't erase the first); chunks carry a ``Nats-Msg-Id``, so a retried put inside the
  duplicate window stores nothing twice, and a reader skips any chunk whose offset it already
  has (an interrupted earlier put of the same object).

A reader never trusts the object info (any node may write one): it reads the chunks of the
origin node's subject up to the size the signed envelope names, and the caller checks the
SHA-256 the envelope names (``crypto.files``). Fewer bytes than that is *not yet here* (a leaf
site's objects arrive when its link returns), never an error.
"""

from __future__ import annotations

import base64
import json
import math
from typing import Final

from nats.errors import Error as NatsError
from nats.js.errors import Error as JsError
from nats.js.errors import NotFoundError

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.streams import ATTACHMENTS_BUCKET, ATTACHMENTS_STREAM
from blo_exchange.errors import BusError
from blo_exchange.services.ports import Fetched

__all__ = ["CHUNK_SIZE", "AttachmentBucket", "chunk_subject", "meta_subject", "object_name"]

CHUNK_SIZE: Final = 256 * 1024
_PARTIALS: Final = 8  # partly arrived objects kept between reads: at most 8 x the size limit
OFFSET_HEADER: Final = "Blo-Offset"


def object_name(owner: str, sha256: str) -> str:
    return f"{owner}/{sha256}"


def chunk_subject(owner: str, sha256: str) -> str:
    return f"$O.{ATTACHMENTS_BUCKET}.C.{owner}.{sha256}"


def meta_subject(owner: str, sha256: str) -> str:
    encoded = base64.urlsafe_b64encode(object_name(owner, sha256).encode()).decode()
    return f"$O.{ATTACHMENTS_BUCKET}.M.{encoded}"


class AttachmentBucket:
    """Put and read sealed attachments; implements ``services.ports.AttachmentObjects``."""

    def __init__(self, bus: BusConnection, *, chunk_size: int = CHUNK_SIZE) -> None:
        self._bus = bus
        self._chunk_size = chunk_size
        self._partial: dict[tuple[str, str], tuple[bytearray, int]] = {}

    async def put(self, owner: str, sha256: str, data: bytes) -> None:
        """Store ``data`` (already sealed) as ``owner``'s object; returns once JetStream has
        every chunk and the object info. ``BusError`` if not (call again: it resumes)."""
        subject = chunk_subject(owner, sha256)
        try:
            for offset in range(0, len(data), self._chunk_size) or [0]:
                await self._bus.js.publish(
                    subject,
                    data[offset : offset + self._chunk_size],
                    headers={
                        "Nats-Msg-Id": f"{owner}.{sha256}.{offset}",
                        OFFSET_HEADER: str(offset),
                    },
                )
            info = {
                "name": object_name(owner, sha256),
                "bucket": ATTACHMENTS_BUCKET,
                "nuid": f"{owner}.{sha256}",
                "size": len(data),
                "chunks": max(1, math.ceil(len(data) / self._chunk_size)),
                "digest": "SHA-256=" + base64.urlsafe_b64encode(bytes.fromhex(sha256)).decode(),
            }
            await self._bus.js.publish(
                meta_subject(owner, sha256),
                json.dumps(info).encode(),
                headers={"Nats-Msg-Id": f"{owner}.{sha256}.meta"},
            )
        except (NatsError, JsError, TimeoutError) as exc:
            raise BusError(f"attachment {sha256[:12]} not stored: {type(exc).__name__}") from exc

    async def fetch(self, owner: str, sha256: str, size: int) -> Fetched:
        """``owner``'s object ``sha256``, assembled by offset up to ``size`` bytes, or how far it
        got while fewer are in the stream. More bytes than ``size`` at an offset that fits is
        impossible for the genuine object, so the hash check will refuse it.

        A partial object is kept (a few, in memory) with the sequence read up to, so the next
        call reads only what arrived since: a file crossing a slow link is read once."""
        key = (owner, sha256)
        assembled, seq = self._partial.pop(key, (bytearray(), 1))
        before = len(assembled)
        subject = chunk_subject(owner, sha256)
        try:
            while len(assembled) < size:
                try:
                    msg = await self._bus.js.get_msg(
                        ATTACHMENTS_STREAM.name, seq=seq, subject=subject, next=True, direct=True
                    )
                except NotFoundError:
                    self._keep_partial(key, assembled, seq)
                    return Fetched(None, have=len(assembled), grew=len(assembled) > before)
                seq = int(msg.seq or 0) + 1
                offset = (msg.headers or {}).get(OFFSET_HEADER)
                if offset == str(len(assembled)) and msg.data:
                    assembled += msg.data
        except (NatsError, JsError, TimeoutError) as exc:
            self._keep_partial(key, assembled, seq)
            raise BusError(f"attachment {sha256[:12]} not read: {type(exc).__name__}") from exc
        return Fetched(bytes(assembled), have=len(assembled), grew=True)

    def _keep_partial(self, key: tuple[str, str], assembled: bytearray, seq: int) -> None:
        if assembled:
            self._partial[key] = (assembled, seq)
            while len(self._partial) > _PARTIALS:
                del self._partial[next(iter(self._partial))]
