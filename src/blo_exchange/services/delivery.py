"""A partner node receiving alerts from the bus: verify, check, open, store, send receipts.

The checks follow docs/contracts/envelope.md in order; every failure has the same outcome — the
message is rejected, counted, recorded in the node's rejection table and, through a signed
``alert_rejected`` receipt, in the ledger — and never reaches a feed.

A fetched batch is handled together (:meth:`DeliveryService.handle_batch`): (1) each message is
checked and opened, in order, the event loop served between two of them; (2) the accepted ones
are stored in one transaction, one insert; (3) the stored ones go to the post-store hooks
(``on_stored``: the one place a stored alert is handed on — the feed's opened frames), and every
accepted alert that names files, stored now or before, to ``on_files`` (issue 17: the files its
agency may open are fetched after it; this one is not best-effort: if it raises, the batch
raises and is acked in no part, so a crash never loses a file to fetch); (4) the
rejections are recorded and every receipt is published, their acks awaited together. It returns
only when all of that is done; acking is the caller's job, after it returned (so after the
commit), and a batch that raised is acked in no part (the consumer then tries its messages one
by one, so one poison message does not hold back the others).

Verification and opening stay on the event loop: measured, they cost 0.5 ms of CPU an alert
(X25519) to 0.8 ms (ML-KEM-768 + X25519), the same CPU per alert in two threads as in one, and
most of it is Python that holds the GIL (canonical JSON, copying; the pyca calls are about a
third), so a thread pool would add hand-offs for little. A batch yields to the loop after each
message instead, so requests and live feeds wait for one message, not for a whole batch.

An alert this node sent itself, met on its first delivery before its own copy is committed,
is not checked and stored a second time: when this process is storing it now, delivery waits for
that (``Inbox.wait_sealed``); when the inbox already holds these exact bytes (stored by another
process, or before a restart; one read for the batch, ``Inbox.stored_digests``) it is a
duplicate; otherwise it is deferred (handed back to come again).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from blo_exchange.crypto.envelope import OpenedEnvelope, UnverifiedEnvelope, envelope_sha256
from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import parse_border_pair, parse_time
from blo_exchange.domain.subjects import parse_alert_subject
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.services.metrics import Histogram
from blo_exchange.services.ports import Directory, Inbox, InboxItem, Rejection, StoredAlert
from blo_exchange.services.receipts import ReceiptPublisher, ReceiptType, deterministic_receipt_id
from blo_exchange.services.signed import SignedMessages

__all__ = ["DeliveryOutcome", "DeliveryService", "FilesHook", "Incoming", "StoredHook"]

log = logging.getLogger(__name__)

OWN_COPY_WAIT = 2.0
"""Seconds a batch waits, in all, for this process's ingest to store alerts it is sealing now."""

StoredHook = Callable[[Sequence[StoredAlert]], Awaitable[None]]
"""Called after each commit with the alerts it stored (never with duplicates). A hook that raises
is logged and counted (``hook_failed``); the alerts stay stored and are acked."""

FilesHook = Callable[[str, str, OpenedEnvelope], Awaitable[None]]
"""Told (alert id, origin node, opened) for each accepted alert that names files."""


@dataclass(frozen=True)
class DeliveryOutcome:
    status: str  # delivered | duplicate | not_addressed | rejected | deferred
    alert_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class Incoming:
    """One message of a batch, as the bus gave it."""

    subject: str
    data: bytes
    stream_seq: int
    first_delivery: bool = False
    """The bus delivers it for the first time (not a redelivery)."""


@dataclass(frozen=True)
class _Accepted:
    """A message that passed every check: to store, then receipt."""

    index: int
    item: InboxItem
    opened: OpenedEnvelope
    signature_key_id: str
    agreement_ids: list[str]


@dataclass(frozen=True)
class _Own:
    """An alert this node sent, not being stored by this process now: settled by what the
    inbox holds (:meth:`DeliveryService.handle_batch`)."""

    index: int
    message: Incoming
    unverified: UnverifiedEnvelope
    alert_id: str
    digest: str


@dataclass(frozen=True)
class _Refused:
    index: int
    message: Incoming
    reason: str
    alert_id: str | None
    digest: str


class DeliveryService:
    def __init__(
        self,
        *,
        node: Node,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        inbox: Inbox,
        receipts: ReceiptPublisher,
        clock: Callable[[], datetime],
        on_stored: Sequence[StoredHook] = (),
        on_files: FilesHook | None = None,
    ) -> None:
        self._node = node
        self._kem_keys = kem_keys
        self._signed = SignedMessages(directory, clock=clock)
        self._inbox = inbox
        self._receipts = receipts
        self._clock = clock
        self.on_stored: list[StoredHook] = list(on_stored)
        self._on_files = on_files
        self.counts: Counter[str] = Counter()
        # From the origin's created_at to stored here: the alert's trip, as partners see it.
        self.delivery_seconds = Histogram()

    async def handle(self, subject: str, data: bytes, stream_seq: int) -> DeliveryOutcome:
        """One message: a batch of one."""
        return (await self.handle_batch([Incoming(subject, data, stream_seq)]))[0]

    async def handle_batch(self, batch: Sequence[Incoming]) -> list[DeliveryOutcome]:
        """Steps (1)-(4) of the module's docstring; an outcome per message, in order. Raises
        when anything could not be committed or published: then no message may be acked."""
        outcomes: list[DeliveryOutcome | None] = [None] * len(batch)
        accepted: list[_Accepted] = []
        refused: list[_Refused] = []
        taken: set[str] = set()
        # The whole batch waits at most OWN_COPY_WAIT for this process's own copies, however
        # many of its messages are the node's own alerts (a stalled database must not hold a
        # batch past its ack wait).
        own_copies_by = asyncio.get_running_loop().time() + OWN_COPY_WAIT
        own: list[_Own] = []

        def sort(index: int, checked: _Accepted | _Refused | DeliveryOutcome) -> None:
            if isinstance(checked, DeliveryOutcome):
                outcomes[index] = checked
            elif isinstance(checked, _Refused):
                refused.append(checked)
            elif checked.item.alert_id in taken:  # the same alert twice in one batch
                outcomes[index] = DeliveryOutcome("duplicate", alert_id=checked.item.alert_id)
            else:
                taken.add(checked.item.alert_id)
                accepted.append(checked)

        for index, message in enumerate(batch):  # (1)
            checked = await self._check(index, message, own_copies_by)
            if isinstance(checked, _Own):
                own.append(checked)
            else:
                sort(index, checked)
            if len(batch) > 1:
                await asyncio.sleep(0)
        if own:  # (1b) one read for all of them
            held = await self._inbox.stored_digests(self._node.id, [o.alert_id for o in own])
            for o in own:
                if held.get(o.alert_id) == o.digest:
                    outcomes[o.index] = DeliveryOutcome("duplicate", alert_id=o.alert_id)
                elif o.message.first_delivery:
                    outcomes[o.index] = DeliveryOutcome("deferred", alert_id=o.alert_id)
                else:
                    checked = await self._check_signed(o.index, o.message, o.unverified, o.digest)
                    sort(o.index, checked)
        # (2) One transaction, one insert.
        kept = await self._inbox.add_batch([a.item for a in accepted]) if accepted else []
        stored: list[StoredAlert] = []
        for entry, item in zip(accepted, kept, strict=True):
            if item is not None:
                as_stored = await self._as_stored(entry, item)
                if as_stored is not None:
                    stored.append(as_stored)
            outcomes[entry.index] = DeliveryOutcome(
                "delivered" if item is not None else "duplicate", alert_id=entry.item.alert_id
            )
        if stored:
            await self._hand_on(stored)  # (3)
        if self._on_files is not None:  # on redelivery too, before any ack
            for entry in accepted:
                if entry.opened.files:
                    await self._on_files(entry.item.alert_id, entry.item.origin_node, entry.opened)
        await _all(  # (4)
            [self._delivered_receipt(entry) for entry in accepted]
            + [self._record_rejection(refusal) for refusal in refused]
        )
        for refusal in refused:
            outcomes[refusal.index] = DeliveryOutcome(
                "rejected", alert_id=refusal.alert_id, reason=refusal.reason
            )
        now = self._clock()
        for alert in stored:
            seconds = (now - alert.item.created_at).total_seconds()
            self.delivery_seconds.observe(max(0.0, seconds))
        done: list[DeliveryOutcome] = []
        for outcome in outcomes:
            if outcome is None:
                raise RuntimeError("a message of the batch was left without an outcome")
            done.append(outcome)
        self.counts.update(outcome.status for outcome in done)
        return done

    async def _check(
        self, index: int, message: Incoming, own_copies_by: float
    ) -> _Accepted | _Refused | _Own | DeliveryOutcome:
        """The contract's checks of one message, in order; nothing is stored or sent here."""
        data = message.data
        digest = envelope_sha256(data)

        def refuse(reason: str, alert_id: str | None = None) -> _Refused:
            return _Refused(index, message, reason, alert_id, digest)

        # (0) The subject must be one of ours; a forged subject is rejected like a forged body.
        try:
            parse_alert_subject(message.subject)
        except ValueError:
            return refuse("bad_subject")
        # (0b) These exact bytes are an alert this node sealed itself and has already stored
        # (the ingest path did, before this consumer got it): nothing to check, nothing to store,
        # and the origin sends no delivered receipt. Any other bytes take every step below.
        if self._inbox.sealed_here(digest):
            return DeliveryOutcome(status="duplicate")
        # (1) Structure. Nothing below trusts an unverified field except to look up keys.
        try:
            unverified = UnverifiedEnvelope.parse(data)
        except InvalidEnvelope:
            return refuse("malformed")
        alert_id = unverified.alert_id
        # (1b) An alert this node sent. Often this very process is storing it now: on its first
        # delivery, wait for that (two thirds of a node's own alerts came round again a second
        # later when they were handed back; issue 14). Otherwise :meth:`handle_batch` reads
        # what the inbox holds of all such alerts of the batch at once: the same bytes stored
        # (by another process, or before a restart) are a duplicate, with nothing to verify;
        # not stored, on a first delivery, it is deferred (handed back for a later delivery,
        # when its own copy is committed), not checked and stored twice; on a redelivery (a
        # crash lost the own copy) it takes every step below.
        if unverified.origin_node == self._node.id:
            if message.first_delivery:
                wait = max(0.0, own_copies_by - asyncio.get_running_loop().time())
                if await self._inbox.wait_sealed(digest, wait):
                    return DeliveryOutcome(status="duplicate")
            return _Own(index, message, unverified, alert_id, digest)
        return await self._check_signed(index, message, unverified, digest)

    async def _check_signed(
        self, index: int, message: Incoming, unverified: UnverifiedEnvelope, digest: str
    ) -> _Accepted | _Refused | DeliveryOutcome:
        """The checks from (2) on, of a message whose subject (0) and structure (1) are sound."""
        subject, data = message.subject, message.data
        agency = self._node.agency_id
        alert_id = unverified.alert_id

        def refuse(reason: str, alert_id: str | None = None) -> _Refused:
            return _Refused(index, message, reason, alert_id, digest)

        pair, kind = parse_alert_subject(subject)  # (0) passed
        if agency not in unverified.recipient_agencies:
            # Not addressed to this agency (another agency's node on the same border pair):
            # nothing to deliver and nothing wrong.
            return DeliveryOutcome(status="not_addressed", alert_id=alert_id)
        # (2)-(6) Known unrevoked key of origin_node, signature, part hashes, subject, recipient.
        try:
            verified = await self._signed.envelope(
                unverified, border_pair=pair, kind=kind, recipient_agency=agency
            )
        except InvalidEnvelope as exc:
            return refuse(getattr(exc, "reason", "invalid"), alert_id)
        # (7) Open: proves the envelope really carries readable keys for us. The inbox keeps the
        # sealed bytes only; the opened parts go to the post-store hooks, in memory.
        try:
            opened = verified.open(agency, self._kem_keys)
        except InvalidEnvelope:
            return refuse("undecryptable", alert_id)
        # (8) Expired: a risk alert past its valid_until is not news any more, and a replayed old
        # lookout must not reach a feed as if it were. Recorded like any rejection.
        if _expired(opened.parts.get("case"), self._clock()):
            return refuse("expired", alert_id)
        header = opened.header
        item = InboxItem(
            node_id=self._node.id,
            alert_id=alert_id,
            agency_id=agency,
            origin_agency=str(header["origin_agency"]),
            origin_node=str(header["origin_node"]),
            border_pair=pair,
            kind=kind,
            tlp=str(header["tlp"]),
            created_at=parse_time(str(header["created_at"])),
            stream_seq=message.stream_seq,
            envelope=data,
            envelope_sha256=digest,
        )
        agreements = [str(a) for a in header["agreement_ids"]]
        return _Accepted(index, item, opened, verified.signature_key_id, agreements)

    async def _as_stored(self, entry: _Accepted, item: InboxItem) -> StoredAlert | None:
        """What the post-store hooks may be given of an alert just stored as ``item``: what was
        opened, unless the inbox kept less than it received (a nominal block that arrived after
        its retention ended is never readable here, not even for a moment in a live feed); then
        what the stored bytes open to, as any later read of them would (None if they do not)."""
        if item.envelope == entry.item.envelope:
            return StoredAlert(item, entry.opened, entry.signature_key_id)
        try:
            reopened = await self._signed.open_stored(item, kem_keys=self._kem_keys)
        except InvalidEnvelope:
            self.counts["hook_skipped"] += 1
            log.warning("stored alert does not open; not handed on", extra={"alert": item.alert_id})
            return None
        return StoredAlert(item, reopened.opened, reopened.verified.signature_key_id)

    async def _hand_on(self, stored: Sequence[StoredAlert]) -> None:
        """(3) Every post-store hook, in order; one that fails does not undo the commit."""
        for hook in self.on_stored:
            try:
                await hook(stored)
            except Exception:
                self.counts["hook_failed"] += 1
                log.exception("a post-store hook failed", extra={"hook": repr(hook)[:200]})

    async def _delivered_receipt(self, entry: _Accepted) -> None:
        item = entry.item
        if item.origin_node == self._node.id:
            return
        # Sent again on redelivery too: the deterministic id makes JetStream drop the copy.
        await self._receipts.send(
            receipt_id=deterministic_receipt_id(item.alert_id, self._node.id, "delivered"),
            type=ReceiptType.DELIVERED,
            border_pair=item.border_pair,
            alert_id=item.alert_id,
            kind=item.kind,
            agreement_ids=entry.agreement_ids,
            envelope_sha256=item.envelope_sha256,
        )

    async def _record_rejection(self, entry: _Refused) -> None:
        message = entry.message
        await self._reject(
            message.subject,
            message.data,
            message.stream_seq,
            entry.reason,
            entry.alert_id,
            entry.digest,
        )

    async def set_aside(self, subject: str, data: bytes, stream_seq: int) -> DeliveryOutcome:
        """Record a message that kept failing in :meth:`handle` (a poison message), like a
        rejection: in the node's rejection table and, by receipt, in the ledger."""
        try:
            alert_id: str | None = UnverifiedEnvelope.parse(data).alert_id
        except InvalidEnvelope:
            alert_id = None
        outcome = await self._reject(
            subject, data, stream_seq, "handler_failed", alert_id, envelope_sha256(data)
        )
        self.counts["set_aside"] += 1
        return outcome

    async def _reject(
        self,
        subject: str,
        data: bytes,
        stream_seq: int,
        reason: str,
        alert_id: str | None,
        digest: str,
    ) -> DeliveryOutcome:
        log.warning(
            "rejected message",
            extra={"subject": subject, "seq": stream_seq, "reason": reason, "alert_id": alert_id},
        )
        await self._inbox.reject(
            Rejection(
                node_id=self._node.id,
                subject=subject,
                stream_seq=stream_seq,
                reason=reason,
                alert_id=alert_id,
                envelope_sha256=digest,
            )
        )
        pair = _pair_of(subject)
        if pair is not None:
            await self._receipts.send(
                receipt_id=deterministic_receipt_id(digest, self._node.id, "rejected"),
                type=ReceiptType.REJECTED,
                border_pair=pair,
                alert_id=alert_id,
                kind=None,
                agreement_ids=[],
                envelope_sha256=digest,
                detail={"reason": reason, "subject": subject[:200], "stream_seq": stream_seq},
            )
        return DeliveryOutcome(status="rejected", alert_id=alert_id, reason=reason)


async def _all(steps: Sequence[Awaitable[None]]) -> None:
    """Run ``steps`` together and wait for every one; then raise the first failure, if any (so
    none is left running unobserved)."""
    results = await asyncio.gather(*steps, return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result


def _expired(case: bytes | None, now: datetime) -> bool:
    if case is None:
        return False
    try:
        valid_until = json.loads(case).get("valid_until")
        return valid_until is not None and parse_time(str(valid_until)) <= now
    except (ValueError, AttributeError):
        return False  # the case is the origin's signed content; its shape is not ours to judge


def _pair_of(subject: str) -> str | None:
    """The border pair a rejection receipt goes to: the subject's, when it names a valid one."""
    try:
        return parse_alert_subject(subject)[0]
    except ValueError:
        parts = subject.split(".")
        return None if len(parts) < 4 else _valid_pair(parts[3])


def _valid_pair(text: str) -> str | None:
    try:
        return parse_border_pair(text)
    except ValueError:
        return None
