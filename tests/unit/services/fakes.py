"""In-memory stand-ins for the service ports, for unit tests without servers."""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, VerifyKey
from blo_exchange.domain.directory import Agreement, Node, Principal
from blo_exchange.errors import BusError, IdempotencyInProgress, IdempotencyMismatch, NotFound
from blo_exchange.services.own_copies import OwnCopies
from blo_exchange.services.ports import (
    Completion,
    IdempotencyBegin,
    InboxItem,
    NewLedgerEntry,
    Rejection,
    RetainedNominal,
)
from blo_exchange.services.receipt_queue import QueuedReceipt


@dataclass(frozen=True)
class FakeAck:
    seq: int
    duplicate: bool


@dataclass
class FakePublisher:
    published: list[tuple[str, bytes, str]] = field(default_factory=list)
    seen: dict[str, int] = field(default_factory=dict)
    fail: bool = False

    async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> FakeAck:
        if self.fail:
            raise BusError("no JetStream ack")
        if msg_id in self.seen:
            return FakeAck(seq=self.seen[msg_id], duplicate=True)
        self.published.append((subject, payload, msg_id))
        self.seen[msg_id] = len(self.published)
        return FakeAck(seq=len(self.published), duplicate=False)


@dataclass
class FakeReceiptQueue:
    """The node's receipt outbox in memory: unique by message id, kept in order."""

    rows: list[QueuedReceipt] = field(default_factory=list)
    sent: set[str] = field(default_factory=set)

    async def put(self, subject: str, payload: bytes, msg_id: str) -> bool:
        if any(r.msg_id == msg_id for r in self.rows):
            return False
        self.rows.append(QueuedReceipt(subject, payload, msg_id))
        return True

    async def unsent(self, limit: int) -> list[QueuedReceipt]:
        return [r for r in self.rows if r.msg_id not in self.sent][:limit]

    async def mark_sent(self, msg_ids: Sequence[str]) -> None:
        self.sent.update(msg_ids)


@dataclass
class FakeDirectory:
    nodes: dict[str, Node] = field(default_factory=dict)
    agreement_list: list[Agreement] = field(default_factory=list)
    kem_keys: dict[str, KemPublicKey] = field(default_factory=dict)
    signing_keys: dict[str, dict[str, VerifyKey]] = field(default_factory=dict)
    principals: dict[bytes, Principal] = field(default_factory=dict)

    async def node(self, node_id: str) -> Node:
        if node_id not in self.nodes:
            raise NotFound(f"unknown node {node_id}")
        return self.nodes[node_id]

    async def agreements(self) -> list[Agreement]:
        return list(self.agreement_list)

    async def current_kem_key(self, agency_id: str, suite: HpkeSuite) -> KemPublicKey | None:
        key = self.kem_keys.get(agency_id)
        return key if key is not None and key.suite == suite else None

    async def verify_keys(
        self, owner_kind: str, owner_id: str, at: datetime
    ) -> dict[str, VerifyKey]:
        return dict(self.signing_keys.get(owner_id, {}))

    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return self.principals.get(token_hash)


@dataclass
class FakeIdempotency:
    rows: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    clock_offset: timedelta = timedelta(0)
    claims: list[int] = field(default_factory=list)
    """The size of each ``claim_new`` call: one statement per chunk of a batch."""

    async def begin(
        self, principal_id: str, key: str, request_sha256: str, alert_id: str, *, stale_after: float
    ) -> IdempotencyBegin:
        row = self.rows.get((principal_id, key))
        if row is None:
            self.rows[(principal_id, key)] = {
                "sha": request_sha256,
                "alert_id": alert_id,
                "state": "pending",
                "response": None,
                "age": 0.0,
            }
            return IdempotencyBegin(state="new", alert_id=alert_id)
        if row["sha"] != request_sha256:
            raise IdempotencyMismatch("different body")
        if row["state"] == "done":
            return IdempotencyBegin(
                state="replay", alert_id=row["alert_id"], response=row["response"]
            )
        if row["age"] < stale_after:
            raise IdempotencyInProgress("in progress")
        return IdempotencyBegin(state="takeover", alert_id=row["alert_id"])

    async def claim_new(
        self, principal_id: str, claims: Sequence[tuple[str, str, str]]
    ) -> set[str]:
        self.claims.append(len(claims))
        claimed: set[str] = set()
        for key, sha, alert_id in claims:
            if (principal_id, key) not in self.rows:
                await self.begin(principal_id, key, sha, alert_id, stale_after=0)
                claimed.add(key)
        return claimed

    async def complete(self, principal_id: str, key: str, response: dict[str, Any]) -> None:
        self.rows[(principal_id, key)].update(state="done", response=response)

    async def abandon(self, principal_id: str, key: str) -> None:
        row = self.rows.get((principal_id, key), {})
        if row.get("state") == "pending":
            row["age"] = float("inf")


@dataclass
class FakeInbox:
    items: dict[tuple[str, str], InboxItem] = field(default_factory=dict)
    rejections: list[Rejection] = field(default_factory=list)
    idempotency: FakeIdempotency = field(default_factory=FakeIdempotency)
    """Where ``add(..., completes=)`` records the answer: the same database, in the real one."""

    sealed: set[str] = field(default_factory=set)
    own: OwnCopies = field(default_factory=OwnCopies)
    """What the ingest path is storing now (``sealing``), as in the real inbox."""
    waits: list[float] = field(default_factory=list)
    """The timeout of every ``wait_sealed`` call."""
    batches: list[int] = field(default_factory=list)
    """The size of each ``add_batch`` call: one insert per batch."""
    fail_batches: int = 0
    """How many of the next ``add_batch`` calls fail, as a lost database would."""
    vault: Any = None
    """The retention vault (``retention_fakes.FakeStore``) that ``kept`` rows go to, as the SQL
    inbox stores them in its own transaction."""

    def sealed_here(self, envelope_sha256: str) -> bool:
        return envelope_sha256 in self.sealed

    def sealing(self, envelope_sha256: str) -> contextlib.AbstractContextManager[None]:
        return self.own.sealing(envelope_sha256)

    async def wait_sealed(self, envelope_sha256: str, timeout: float) -> bool:
        self.waits.append(timeout)
        await self.own.wait_sealed(envelope_sha256, timeout)
        return envelope_sha256 in self.sealed

    async def add(
        self,
        item: InboxItem,
        *,
        completes: Completion | None = None,
        kept: RetainedNominal | None = None,
    ) -> InboxItem | None:
        if kept is not None:
            self.vault.put(kept)
        if completes is not None:
            done = completes
            await self.idempotency.complete(done.principal_id, done.key, done.response)
        if (item.node_id, item.alert_id) in self.items:
            return None
        position = 1 + sum(1 for node, _ in self.items if node == item.node_id)
        stored = dataclasses.replace(item, feed_seq=position)
        self.items[(item.node_id, item.alert_id)] = stored
        if completes is not None:
            self.sealed.add(item.envelope_sha256)
        return stored

    async def add_batch(
        self,
        items: Sequence[InboxItem],
        *,
        kept: Sequence[RetainedNominal] = (),
        completes: Sequence[Completion] = (),
    ) -> list[InboxItem | None]:
        if completes and len(completes) != len(items):
            raise ValueError("one answer per item")
        if self.fail_batches:
            self.fail_batches -= 1
            raise OSError("the database went away mid-batch")
        self.batches.append(len(items))
        for row in kept:
            self.vault.put(row)
        return [
            await self.add(item, completes=completes[i] if completes else None)
            for i, item in enumerate(items)
        ]

    async def get(self, node_id: str, alert_id: str) -> InboxItem | None:
        return self.items.get((node_id, alert_id))

    async def page(
        self, node_id: str, agency_id: str, *, after: int, limit: int
    ) -> list[InboxItem]:
        rows = sorted(
            (
                i
                for i in self.items.values()
                if i.node_id == node_id and i.agency_id == agency_id and i.feed_seq > after
            ),
            key=lambda i: i.feed_seq,
        )
        return rows[:limit]

    async def stored_digests(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, str]:
        found = (self.items.get((node_id, alert_id)) for alert_id in alert_ids)
        return {item.alert_id: item.envelope_sha256 for item in found if item is not None}

    async def last_position(self, node_id: str, agency_id: str) -> int:
        seqs = [
            i.feed_seq
            for i in self.items.values()
            if i.node_id == node_id and i.agency_id == agency_id
        ]
        return max(seqs, default=0)

    async def reject(self, rejection: Rejection) -> bool:
        self.rejections.append(rejection)
        return True


@dataclass
class FakeLedgerStore:
    entries: list[NewLedgerEntry] = field(default_factory=list)

    async def append(self, entries: list[NewLedgerEntry]) -> list[int]:
        known = {e.event_id for e in self.entries}
        added = []
        for entry in entries:
            if entry.event_id not in known:
                known.add(entry.event_id)
                self.entries.append(entry)
                added.append(len(self.entries) - 1)
        return added

    async def known_event_ids(self, event_ids: Iterable[str]) -> set[str]:
        known = {e.event_id for e in self.entries}
        return {i for i in event_ids if i in known}
