"""Accepting a terminal's alert: authorise, resolve recipients, seal, sign, publish, answer.

Not here: HTTP (``api``), the body's validation (``domain.alerts``), the envelope's cryptography
(``crypto.envelope``). The 202 is only given after JetStream acknowledged the envelope, and a
retried request with the same ``Idempotency-Key`` gets the first answer, not a second alert.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import RecipientKey, envelope_sha256
from blo_exchange.crypto.files import FilePart, SealedAlert
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, SigningKey
from blo_exchange.domain.alerts import FeedbackSubmission, RiskSubmission, SeizureSubmission
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.ids import alert_id_time, new_alert_id
from blo_exchange.domain.policy import Recipients, resolve_recipients
from blo_exchange.errors import BloExchangeError, BusError, Forbidden, PolicyError
from blo_exchange.services.attachments import AttachmentService, file_parts
from blo_exchange.services.metrics import Histogram
from blo_exchange.services.ports import (
    Ack,
    Completion,
    Directory,
    IdempotencyStore,
    Inbox,
    InboxItem,
    Publisher,
)
from blo_exchange.services.sealing import AlertSealer
from blo_exchange.services.uploads import UploadService

__all__ = ["Accepted", "IngestService", "Submission", "request_fingerprint"]

Submission = SeizureSubmission | RiskSubmission | FeedbackSubmission
SealedHook = Callable[[InboxItem, Mapping[str, Any], Mapping[str, bytes]], None]


@dataclass(frozen=True)
class Accepted:
    response: dict[str, Any]
    replayed: bool


def request_fingerprint(submission: Submission) -> str:
    """SHA-256 of the validated body: whitespace or key order don't make it another body.

    Never signed nor shared, only compared on this node, so sorted-key ``json.dumps`` is enough:
    RFC 8785 would cost a pure-Python canonicalisation per request for nothing.
    """
    body = submission.model_dump(mode="json")
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class IngestService:
    def __init__(
        self,
        *,
        node: Node,
        signer: SigningKey,
        suite: HpkeSuite,
        directory: Directory,
        idempotency: IdempotencyStore,
        inbox: Inbox,
        publisher: Publisher,
        clock: Callable[[], datetime],
        rng: Callable[[int], bytes] = os.urandom,
        stale_after: float = 30.0,
        uploads: UploadService | None = None,
        attachments: AttachmentService | None = None,
    ) -> None:
        self._node = node
        self._directory = directory
        self._sealer = AlertSealer(
            node=node,
            signer=signer,
            suite=suite,
            directory=directory,
            publisher=publisher,
            rng=rng,
        )
        self._idempotency = idempotency
        self._inbox = inbox
        self._clock = clock
        self._rng = rng
        self._stale_after = stale_after
        self._uploads = uploads
        self._attachments = attachments
        self.accepted = 0
        self.publish_seconds = Histogram()  # JetStream publish until its ack
        self.on_sealed: list[SealedHook] = []
        """Called with (the item as stored, header, parts) of each alert stored as this agency's
        own copy: the plaintext this node already has, at its feed position (the search
        index's, issue 14)."""

    def authorize(self, principal: Principal, submission: Submission) -> None:
        """Only this node's terminals post, and only for the border pairs the node serves."""
        if principal.role is not Role.TERMINAL or principal.node_id != self._node.id:
            raise Forbidden("only a terminal of this node may post alerts here")
        if submission.border_pair not in self._node.border_pairs:
            raise Forbidden(f"this node does not serve border pair {submission.border_pair}")
        points = self._node.crossing_points
        if points and submission.crossing_point not in points:
            raise PolicyError(
                f"crossing point {submission.crossing_point} is not one of this node's: "
                + ", ".join(points)
            )

    async def _check_references(self, submission: Submission) -> None:
        """An alert may name only alerts its poster may see: ``supersedes`` one this node's
        agency sent from here, a feedback's ``case.alert_id`` one this node holds (sent or
        received). Anything else, unknown or someone else's, gets the same refusal."""
        supersedes = submission.supersedes
        if supersedes is not None:
            row = await self._inbox.get(self._node.id, supersedes)
            if row is None or row.origin_agency != self._node.agency_id:
                raise PolicyError("supersedes names no alert this office sent")
        if isinstance(submission, FeedbackSubmission):
            row = await self._inbox.get(self._node.id, submission.case.alert_id)
            if row is None or row.agency_id != self._node.agency_id:
                raise PolicyError("case.alert_id names no alert this office holds")

    async def submit(
        self,
        principal: Principal,
        submission: Submission,
        idempotency_key: str,
        *,
        bulk: bool = False,
    ) -> Accepted:
        """``bulk``: published on the bulk lane (an item of a ``:batch`` post), which partners
        deliver after the live lane's alerts."""
        plan = await self._plan(principal, submission)
        claim = await self._idempotency.begin(
            principal.id,
            idempotency_key,
            request_fingerprint(submission),
            new_alert_id(plan.now, self._rng),
            stale_after=self._stale_after,
        )
        if claim.state == "replay" and claim.response is not None:
            return Accepted(response=claim.response, replayed=True)
        alert_id = claim.alert_id
        if claim.state == "takeover":
            # The alert was created by the first attempt, whose envelope may already be in the
            # stream: its time is the one the id carries (to the millisecond, as the header's),
            # not this retry's, so a retry seals the same header and answers the same created_at.
            plan = replace(plan, now=alert_id_time(alert_id))

        made = self._seal(plan, alert_id)
        raw = made.sealed.envelope
        if self._attachments is not None and made.sealed.files:
            # Kept before the alert goes out: an alert never names a file its node could lose.
            await self._attachments.keep(alert_id, made.sealed, [f.nominal for f in plan.files])
        # Marked as this process's own until its copy is stored: the node's consumer, meeting
        # the alert meanwhile, waits for that instead of handing it back to come again.
        with self._inbox.sealing(envelope_sha256(raw)):
            ack = await self._publish(made, bulk=bulk, principal=principal, key=idempotency_key)
            response = made.response(ack)
            if ack.duplicate:
                # An earlier attempt's envelope is the one in the stream; the node's own consumer
                # stores that one. This request created nothing: it is answered as a replay.
                await self._idempotency.complete(principal.id, idempotency_key, response)
                self.accepted += 1
                return Accepted(response=response, replayed=True)
            # The envelope and the answer in one transaction: a crash before it leaves the key
            # pending (a retry takes over with the same alert id), never one without the other.
            stored = await self._inbox.add(
                self._sealer.own_copy(made.header, raw, ack),
                completes=Completion(principal.id, idempotency_key, response),
            )
            if stored is not None:
                self._sealed(stored, made)
        if self._uploads is not None:
            await self._uploads.used(submission.attachments)
        self.accepted += 1
        return Accepted(response=response, replayed=False)

    async def submit_batch(
        self, principal: Principal, items: Sequence[tuple[Submission, str]]
    ) -> list[Accepted | BloExchangeError]:
        """The items of a ``:batch`` post (each a submission and its Idempotency-Key), on the
        bulk lane: each accepted or refused on its own, the answers in the items' order.

        What each item is given is what :meth:`submit` would give it, one after another in
        the batch's order for items sharing a key (a later one replays the first's answer). The
        work is shared where it can be (issue 14): the batch goes in chunks of
        :data:`BATCH_CHUNK`, whose new keys are claimed in one statement, whose envelopes are
        published together (their acks awaited together) and stored as the node's own copies,
        with every answer, in one transaction. Items naming files, and keys seen before, take
        :meth:`submit`'s path.
        """
        answers: list[Accepted | BloExchangeError | None] = [None] * len(items)
        alone: dict[str, list[int]] = {}  # key -> items for submit(), in batch order
        shared: list[int] = []
        for index, (submission, key) in enumerate(items):
            if key in alone or submission.attachments:
                alone.setdefault(key, []).append(index)
            else:
                alone[key] = []  # its later items wait for this one's answer
                shared.append(index)
        chunks = [shared[i : i + BATCH_CHUNK] for i in range(0, len(shared), BATCH_CHUNK)]
        room = asyncio.Semaphore(CHUNKS_IN_FLIGHT)
        room_alone = asyncio.Semaphore(BATCH_ALONE_CONCURRENCY)

        async def chunk(indexes: list[int]) -> None:
            async with room:
                got = await self._accept_chunk(principal, [items[i] for i in indexes])
            for index, answer in zip(indexes, got, strict=True):
                if answer is None:  # a key seen before: submit()'s path, in batch order below
                    alone[items[index][1]].append(index)
                else:
                    answers[index] = answer

        async def one_by_one(indexes: list[int]) -> None:
            for index in indexes:
                submission, key = items[index]
                async with room_alone:
                    try:
                        answers[index] = await self.submit(principal, submission, key, bulk=True)
                    except BloExchangeError as exc:
                        answers[index] = exc

        await _all_finished(chunk(indexes) for indexes in chunks)
        await _all_finished(one_by_one(sorted(group)) for group in alone.values() if group)
        given: list[Accepted | BloExchangeError] = []
        for answer in answers:
            if answer is None:
                raise RuntimeError("a batch item was left without an answer")
            given.append(answer)
        return given

    async def _accept_chunk(
        self, principal: Principal, items: Sequence[tuple[Submission, str]]
    ) -> list[Accepted | BloExchangeError | None]:
        """Items with distinct keys, naming no files: their answers, None for an item whose key
        was seen before (it is left for :meth:`submit`)."""
        answers: list[Accepted | BloExchangeError | None] = [None] * len(items)
        plans: dict[int, _Plan] = {}
        for index, (submission, _) in enumerate(items):
            try:
                plans[index] = await self._plan(principal, submission)
            except BloExchangeError as exc:
                answers[index] = exc
        ids = {index: new_alert_id(plan.now, self._rng) for index, plan in plans.items()}
        claimed = await self._idempotency.claim_new(
            principal.id,
            [
                (items[index][1], request_fingerprint(plan.submission), ids[index])
                for index, plan in plans.items()
            ],
        )
        made: dict[int, _Made] = {}
        for index, plan in plans.items():
            if items[index][1] in claimed:
                made[index] = self._seal(plan, ids[index])
                await asyncio.sleep(0)  # a chunk's sealing does not hold the loop at once
        with contextlib.ExitStack() as sealing:
            for one in made.values():
                sealing.enter_context(self._inbox.sealing(envelope_sha256(one.sealed.envelope)))
            acks = await asyncio.gather(
                *(
                    self._publish(one, bulk=True, principal=principal, key=items[index][1])
                    for index, one in made.items()
                ),
                return_exceptions=True,
            )
            own: list[tuple[int, InboxItem, Completion]] = []
            for (index, one), ack in zip(made.items(), acks, strict=True):
                key = items[index][1]
                if isinstance(ack, BusError):
                    answers[index] = ack
                elif isinstance(ack, BaseException):
                    raise ack
                elif ack.duplicate:  # see submit(): an earlier attempt's envelope is there
                    response = one.response(ack)
                    await self._idempotency.complete(principal.id, key, response)
                    answers[index] = Accepted(response=response, replayed=True)
                else:
                    copy = self._sealer.own_copy(one.header, one.sealed.envelope, ack)
                    own.append((index, copy, Completion(principal.id, key, one.response(ack))))
            # Every answer with its envelope, in one transaction (as submit() stores one).
            stored = await self._inbox.add_batch(
                [copy for _, copy, _ in own], completes=[done for _, _, done in own]
            )
        for (index, _, done), item in zip(own, stored, strict=True):
            if item is not None:
                self._sealed(item, made[index])
            answers[index] = Accepted(response=done.response, replayed=False)
        self.accepted += sum(1 for index in made if isinstance(answers[index], Accepted))
        return answers

    async def _plan(self, principal: Principal, submission: Submission) -> _Plan:
        """Everything an alert needs before its key is claimed: a refused alert leaves the key
        free for a fixed body."""
        self.authorize(principal, submission)
        await self._check_references(submission)
        now = self._clock()
        recipients = resolve_recipients(
            await self._directory.agreements(),
            origin_agency=self._node.agency_id,
            border_pair=submission.border_pair,
            kind=submission.kind,
            tlp=submission.tlp,
            at=now,
        )
        keys = await self._sealer.keys_for(recipients.agencies)
        # The files it names: complete, this terminal's, within the node's limits (issue 17).
        if submission.attachments and (self._uploads is None or self._attachments is None):
            raise PolicyError("this node takes no attachments")
        files = (
            file_parts(await self._uploads.take(principal, submission.attachments))
            if submission.attachments and self._uploads is not None
            else []
        )
        return _Plan(submission, now, recipients, keys, files)

    def _seal(self, plan: _Plan, alert_id: str) -> _Made:
        submission, recipients = plan.submission, plan.recipients
        header = self._sealer.header(
            alert_id=alert_id,
            kind=submission.kind,
            border_pair=submission.border_pair,
            crossing_point=submission.crossing_point,
            created_at=plan.now,
            tlp=submission.tlp.value,
            handling=submission.handling.model_dump(mode="json"),
            grading=None
            if submission.grading is None
            else submission.grading.model_dump(mode="json"),
            agreement_ids=recipients.agreement_ids,
            supersedes=submission.supersedes,
        )
        parts = {"case": canonical_json(submission.case_document())}
        nominal = submission.nominal_document()
        if nominal is not None:
            parts["nominal"] = canonical_json(nominal)
        sealed_to = [
            RecipientKey(
                agency=agency,
                key=key,
                parts=_parts_for(
                    agency in recipients.nominal_agencies, nominal is not None, plan.files
                ),
            )
            for agency, key in plan.keys.items()
        ]
        sealed = self._sealer.seal_alert(header, parts, sealed_to, plan.files)
        return _Made(plan, header, parts, sealed)

    async def _publish(self, made: _Made, *, bulk: bool, principal: Principal, key: str) -> Ack:
        """JetStream's ack; on a failed publish the key is let go first (``abandon``)."""
        started = time.perf_counter()
        try:
            ack = await self._sealer.publish(made.header, made.sealed.envelope, bulk=bulk)
        except BusError:
            await self._idempotency.abandon(principal.id, key)
            raise
        self.publish_seconds.observe(time.perf_counter() - started)
        return ack

    def _sealed(self, stored: InboxItem, made: _Made) -> None:
        for hook in self.on_sealed:
            hook(stored, made.header, made.parts)


BATCH_CHUNK = 50
"""Items of a ``:batch`` post sealed, published and stored together."""
CHUNKS_IN_FLIGHT = 2
"""A post's chunks at once: one seals while the other waits for its acks and its store."""
BATCH_ALONE_CONCURRENCY = 32
"""Items taking :meth:`IngestService.submit`'s path at once, within one post."""


@dataclass(frozen=True)
class _Plan:
    submission: Submission
    now: datetime
    recipients: Recipients
    keys: dict[str, KemPublicKey]
    files: list[FilePart]


@dataclass(frozen=True)
class _Made:
    plan: _Plan
    header: dict[str, Any]
    parts: dict[str, bytes]
    sealed: SealedAlert

    def response(self, ack: Ack) -> dict[str, Any]:
        """The 202's body (and the batch item's)."""
        submission, recipients = self.plan.submission, self.plan.recipients
        return {
            "alert_id": self.header["alert_id"],
            "border_pair": submission.border_pair,
            "kind": submission.kind,
            "recipients": list(recipients.agencies),
            "agreement_ids": list(recipients.agreement_ids),
            "stream_seq": ack.seq,
            "created_at": self.header["created_at"],
        }


async def _all_finished(work: Iterable[Awaitable[None]]) -> None:
    """Every one run to its end; then the first unexpected failure, if any, is raised: none is
    left half-way because another failed."""
    outcomes = await asyncio.gather(*work, return_exceptions=True)
    for outcome in outcomes:
        if isinstance(outcome, BaseException):
            raise outcome


def _parts_for(personal: bool, has_nominal: bool, files: list[FilePart]) -> tuple[str, ...]:
    """What one recipient is given: the case, the nominal block and the personal-data files
    where an agreement allows personal data, and every other file."""
    names = ["case"]
    if has_nominal and personal:
        names.append("nominal")
    names += [f"file-{i}" for i, f in enumerate(files, 1) if personal or not f.nominal]
    return tuple(names)
