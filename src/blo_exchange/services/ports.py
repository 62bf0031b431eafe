"""What the services need from the outside world, as Protocols.

The Postgres adapter (``ledger/``) and the NATS adapter (``bus/``) implement these; unit tests pass
fakes. Every store method is one atomic operation: the adapter owns its transaction, the services
never commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, Protocol

from blo_exchange.crypto.envelope import OpenedEnvelope
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, VerifyKey
from blo_exchange.crypto.retention import SealedNominal
from blo_exchange.domain.directory import Agreement, Node, Principal

__all__ = [
    "Ack",
    "AttachmentObjects",
    "AttachmentRecord",
    "AttachmentStore",
    "Completion",
    "Directory",
    "DirectoryView",
    "Fetched",
    "Health",
    "IdempotencyBegin",
    "IdempotencyStore",
    "Inbox",
    "InboxItem",
    "LedgerStore",
    "NewLedgerEntry",
    "Publisher",
    "Readiness",
    "Rejection",
    "RetainedNominal",
    "StoredAlert",
    "UploadRecord",
    "UploadSpool",
    "UploadStore",
]


class Ack(Protocol):
    @property
    def seq(self) -> int: ...
    @property
    def duplicate(self) -> bool: ...


class Publisher(Protocol):
    async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> Ack:
        """Publish and return only once the stream has acknowledged it durably."""
        ...


class Directory(Protocol):
    async def node(self, node_id: str) -> Node: ...
    async def agreements(self) -> list[Agreement]: ...
    async def current_kem_key(self, agency_id: str, suite: HpkeSuite) -> KemPublicKey | None: ...
    async def verify_keys(
        self, owner_kind: str, owner_id: str, at: datetime
    ) -> dict[str, VerifyKey]:
        """Signing keys of the owner that were not revoked at ``at``."""
        ...

    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None: ...
    def invalidate(self) -> None:
        """Forget what is cached: the next read goes to the source."""
        ...


@dataclass(frozen=True)
class IdempotencyBegin:
    """``new``: go ahead; ``replay``: return ``response``; ``takeover``: redo with ``alert_id``."""

    state: Literal["new", "replay", "takeover"]
    alert_id: str
    response: dict[str, Any] | None = None


class IdempotencyStore(Protocol):
    async def begin(
        self, principal_id: str, key: str, request_sha256: str, alert_id: str, *, stale_after: float
    ) -> IdempotencyBegin:
        """Claim the key. Raises IdempotencyMismatch or IdempotencyInProgress."""
        ...

    async def claim_new(
        self, principal_id: str, claims: Sequence[tuple[str, str, str]]
    ) -> set[str]:
        """Claim, together, each of ``claims`` (key, request SHA-256, alert id) whose key was
        never seen: those keys, now pending. A key seen before is left as it was, for
        :meth:`begin` to say what it is (a replay, another body, in progress, a takeover)."""
        ...

    async def complete(self, principal_id: str, key: str, response: dict[str, Any]) -> None: ...
    async def abandon(self, principal_id: str, key: str) -> None:
        """The attempt failed: let the next one take over at once, with the same alert id."""
        ...


@dataclass(frozen=True)
class InboxItem:
    node_id: str
    alert_id: str
    agency_id: str
    origin_agency: str
    origin_node: str
    border_pair: str
    kind: str
    tlp: str
    created_at: datetime
    stream_seq: int
    envelope: bytes
    envelope_sha256: str
    feed_seq: int = 0
    """The node's position of the stored item (its feed order); 0 before it is stored."""


@dataclass(frozen=True)
class Rejection:
    node_id: str
    subject: str
    stream_seq: int
    reason: str
    alert_id: str | None
    envelope_sha256: str


@dataclass(frozen=True)
class Completion:
    """The answer to the request that accepted an alert, recorded for its replays."""

    principal_id: str
    key: str
    response: dict[str, Any]


@dataclass(frozen=True)
class RetainedNominal:
    """One alert's nominal block under retention at one node (``role``: origin or recipient):
    a row of the retention vault (``services.retention``)."""

    node_id: str
    alert_id: str
    role: str
    agency_id: str
    origin_agency: str
    border_pair: str
    kind: str
    agreement_id: str
    agreement_ids: tuple[str, ...]
    envelope_sha256: str
    created_at: datetime
    expires_at: datetime
    max_until: datetime
    sealed: SealedNominal | None = None
    decision: str | None = None
    decided_by: str | None = None
    reason: str | None = None
    erased_at: datetime | None = None


class Inbox(Protocol):
    async def add(
        self,
        item: InboxItem,
        *,
        completes: Completion | None = None,
        kept: RetainedNominal | None = None,
    ) -> InboxItem | None:
        """Store a sealed envelope: the item as stored, with its ``feed_seq`` (as ``add_batch``
        gives each); None when it was already there (redelivery).

        With ``completes`` (the ingest path's last step), the idempotency record of the request
        that accepted the alert is completed in the same transaction: one commit, not two. With
        ``kept``, the retention vault's row for the alert's nominal block (``RetainingInbox``)
        is stored in that transaction too (unless the vault has one for the alert already): the
        row is never missing while the item is there.
        """
        ...

    def sealed_here(self, envelope_sha256: str) -> bool:
        """True when these exact bytes are an alert this process accepted and stored itself
        (``add(..., completes=)`` inserted and committed them); False when unsure. From memory."""
        ...

    def sealing(self, envelope_sha256: str) -> AbstractContextManager[None]:
        """Around the ingest path's publish and own-copy ``add``: these bytes are being stored
        by this process, so :meth:`wait_sealed` waits for them meanwhile."""
        ...

    async def wait_sealed(self, envelope_sha256: str, timeout: float) -> bool:
        """:meth:`sealed_here`, after waiting (up to ``timeout``) for this process to finish
        storing these bytes if it is doing so now; at once when it is not."""
        ...

    async def add_batch(
        self,
        items: Sequence[InboxItem],
        *,
        kept: Sequence[RetainedNominal] = (),
        completes: Sequence[Completion] = (),
    ) -> list[InboxItem | None]:
        """Store received envelopes in one transaction, in the order given: each one as stored
        here (what ``get`` gives back: a wrapping inbox may have kept less of it, such as a
        nominal block no longer readable here) with its new ``feed_seq``, or None where the alert
        was already stored (a redelivery). Positions of one batch are consecutive and become
        visible together, after every lower one. ``kept``: vault rows, as for :meth:`add`.

        With ``completes`` (the ingest path's batch, one per item, in the items' order: the
        items are this process's own copies), each request's answer is recorded in the same
        transaction, as :meth:`add` records one."""
        ...

    async def stored_digests(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, str]:
        """For those of ``alert_ids`` stored for ``node_id``: the SHA-256 (hex) of the sealed
        bytes received, one read for all (what an alert met again is compared with)."""
        ...

    async def get(self, node_id: str, alert_id: str) -> InboxItem | None: ...
    async def page(
        self, node_id: str, agency_id: str, *, after: int, limit: int
    ) -> list[InboxItem]:
        """Stored items with a feed position above ``after``, in position order.

        Positions are the node's order of storing, not the stream's, and a position becomes
        visible only after every lower one did: a reader never skips an item by moving on.
        """
        ...

    async def last_position(self, node_id: str, agency_id: str) -> int:
        """The highest feed position :meth:`page` would return now; 0 for an empty inbox."""
        ...

    async def reject(self, rejection: Rejection) -> bool: ...


@dataclass(frozen=True)
class NewLedgerEntry:
    event_id: str
    type: str
    alert_id: str | None
    actor_node: str | None
    actor_agency: str | None
    recipients: tuple[str, ...]
    border_pair: str | None
    kind: str | None
    occurred_at: datetime
    leaf_input: bytes


class LedgerStore(Protocol):
    async def append(self, entries: Sequence[NewLedgerEntry]) -> list[int]:
        """Append in one transaction, skipping event ids already present; new indexes."""
        ...


@dataclass(frozen=True)
class Readiness:
    nats: bool = False
    stream: bool = False
    database: bool = False
    delivery: bool = False
    """The delivery consumer is caught up: at most ``max_backlog`` messages wait for it."""
    backlog: int | None = None
    """Messages not yet acked by the delivery consumer (pending plus in flight); None: unknown."""
    checked_at: float = float("-inf")

    def checks(self) -> dict[str, bool]:
        return {
            "nats": self.nats,
            "stream": self.stream,
            "database": self.database,
            "delivery": self.delivery,
        }


class Health(Protocol):
    """What ``/readyz`` and ``/metrics`` report about the running node."""

    def ready(self) -> Readiness:
        """The last checks, kept up to date in the background: answers at once."""
        ...

    async def metrics(self) -> str:
        """Prometheus text exposition."""
        ...


class DirectoryView(Protocol):
    async def snapshot(self) -> dict[str, Any]:
        """Agencies, nodes, public keys (with revocations) and agreements, as ``/v1/directory``
        serves them."""
        ...


@dataclass(frozen=True)
class Fetched:
    """An object read from the bucket: its bytes once all ``size`` are there (the caller checks
    the hash), else None and how many bytes have arrived (``grew``: more than last time)."""

    data: bytes | None
    have: int = 0
    grew: bool = False


class AttachmentObjects(Protocol):
    """The bucket sealed attachments travel in (``bus.objects``)."""

    async def put(self, owner: str, sha256: str, data: bytes) -> None: ...
    async def fetch(self, owner: str, sha256: str, size: int) -> Fetched: ...


@dataclass(frozen=True)
class AttachmentRecord:
    """A file part of an alert in a node's inbox, as its signed manifest names it."""

    node_id: str
    alert_id: str
    part: str
    origin_node: str
    sha256: str
    size: int
    nominal: bool
    state: str = "pending"  # pending | stored | refused
    reason: str | None = None
    pushed: bool = False


class AttachmentStore(Protocol):
    async def add(self, records: Sequence[AttachmentRecord], ciphertexts: dict[str, bytes]) -> None:
        """Insert records (existing ones are left as they are); ``ciphertexts`` by part, for
        records that are stored at once (the origin's own)."""
        ...

    async def to_push(self, node_id: str, limit: int) -> list[tuple[AttachmentRecord, bytes]]: ...
    async def pushed(self, record: AttachmentRecord) -> None: ...
    async def to_fetch(self, node_id: str, limit: int) -> list[AttachmentRecord]: ...
    async def store(self, record: AttachmentRecord, ciphertext: bytes) -> None: ...
    async def refuse(self, record: AttachmentRecord, reason: str) -> None: ...
    async def of_alert(self, node_id: str, alert_id: str) -> list[AttachmentRecord]: ...
    async def ciphertext(
        self, node_id: str, alert_id: str, part: str, sha256: str
    ) -> bytes | None: ...
    async def forget_nominal(self, node_id: str, alert_id: str) -> int:
        """Delete the records and ciphertexts of the alert's nominal files; how many."""
        ...


@dataclass(frozen=True)
class UploadRecord:
    """An upload's state. ``filename`` is the service's (kept beside the bytes): a store need
    not keep it, and gives it empty."""

    id: str
    node_id: str
    principal_id: str
    length: int
    received: int
    filename: str
    declared_type: str
    nominal: bool
    keep_location: bool
    state: str = "open"  # open | ready | used
    media_type: str | None = None
    sha256: str | None = None
    size: int | None = None


class UploadStore(Protocol):
    async def create(self, record: UploadRecord, *, at: datetime) -> None: ...
    async def get(self, upload_id: str) -> UploadRecord | None: ...
    async def advance(self, upload_id: str, expected: int, received: int) -> bool:
        """Move ``received`` from ``expected`` on; False when it no longer is ``expected``."""
        ...

    async def ready(self, upload_id: str, *, media_type: str, sha256: str, size: int) -> None: ...
    async def used(self, upload_ids: Sequence[str]) -> None: ...
    async def stale(self, node_id: str, before: datetime) -> list[str]:
        """Uploads of the node begun before ``before`` and never sealed (open or ready)."""
        ...

    async def expire(self, upload_ids: Sequence[str]) -> None: ...


class UploadSpool(Protocol):
    """Where an upload's bytes wait on the node's disk until sealed (``db.spool``)."""

    def write_at(self, upload_id: str, offset: int, data: bytes) -> None: ...
    def read(self, upload_id: str, name: str = "raw") -> bytes: ...
    def put(self, upload_id: str, name: str, data: bytes) -> None: ...
    def remove(self, upload_id: str) -> None: ...


@dataclass(frozen=True)
class StoredAlert:
    """An alert delivery has just stored and committed, with what opening it gave: what the
    post-store hooks (``DeliveryService.on_stored``) are handed. Plaintext: memory only."""

    item: InboxItem
    """The stored row, with its feed position."""
    opened: OpenedEnvelope
    signature_key_id: str
    """The origin node's key that signed it, as verified."""
