"""Accepting a terminal's alert: authorise, resolve recipients, seal, sign, publish, answer.

Not here: HTTP (``api``), the body's validation (``domain.alerts``), the envelope's cryptography
(``crypto.envelope``). The 202 is only given after JetStream acknowledged the envelope, and a
retried request with the same ``Idempotency-Key`` gets the first answer, not a second alert.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import RecipientKey, envelope_sha256
from blo_exchange.crypto.files import FilePart
from blo_exchange.crypto.keys import HpkeSuite, SigningKey
from blo_exchange.domain.alerts import FeedbackSubmission, RiskSubmission, SeizureSubmission
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.ids import alert_id_time, new_alert_id
from blo_exchange.domain.policy import resolve_recipients
from blo_exchange.errors import BusError, Forbidden, PolicyError
from blo_exchange.services.attachments import AttachmentService, file_parts
from blo_exchange.services.metrics import Histogram
from blo_exchange.services.ports import (
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
        self.authorize(principal, submission)
        await self._check_references(submission)
        now = self._clock()
        # Resolve before claiming the key: a refused alert leaves the key free for a fixed body.
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

        claim = await self._idempotency.begin(
            principal.id,
            idempotency_key,
            request_fingerprint(submission),
            new_alert_id(now, self._rng),
            stale_after=self._stale_after,
        )
        if claim.state == "replay" and claim.response is not None:
            return Accepted(response=claim.response, replayed=True)
        alert_id = claim.alert_id
        if claim.state == "takeover":
            # The alert was created by the first attempt, whose envelope may already be in the
            # stream: its time is the one the id carries (to the millisecond, as the header's),
            # not this retry's, so a retry seals the same header and answers the same created_at.
            now = alert_id_time(alert_id)

        header = self._sealer.header(
            alert_id=alert_id,
            kind=submission.kind,
            border_pair=submission.border_pair,
            crossing_point=submission.crossing_point,
            created_at=now,
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
                parts=_parts_for(agency in recipients.nominal_agencies, nominal is not None, files),
            )
            for agency, key in keys.items()
        ]
        sealed = self._sealer.seal_alert(header, parts, sealed_to, files)
        raw = sealed.envelope
        if self._attachments is not None and sealed.files:
            # Kept before the alert goes out: an alert never names a file its node could lose.
            await self._attachments.keep(alert_id, sealed, [f.nominal for f in files])
        # Marked as this process's own until its copy is stored: the node's consumer, meeting
        # the alert meanwhile, waits for that instead of handing it back to come again.
        with self._inbox.sealing(envelope_sha256(raw)):
            started = time.perf_counter()
            try:
                ack = await self._sealer.publish(header, raw, bulk=bulk)
                self.publish_seconds.observe(time.perf_counter() - started)
            except BusError:
                await self._idempotency.abandon(principal.id, idempotency_key)
                raise
            response = {
                "alert_id": alert_id,
                "border_pair": submission.border_pair,
                "kind": submission.kind,
                "recipients": list(recipients.agencies),
                "agreement_ids": list(recipients.agreement_ids),
                "stream_seq": ack.seq,
                "created_at": header["created_at"],
            }
            if ack.duplicate:
                # An earlier attempt's envelope is the one in the stream; the node's own consumer
                # stores that one. This request created nothing: it is answered as a replay.
                await self._idempotency.complete(principal.id, idempotency_key, response)
                self.accepted += 1
                return Accepted(response=response, replayed=True)
            else:
                # The envelope and the answer in one transaction: a crash before it leaves the key
                # pending (a retry takes over with the same alert id), never one without the other.
                own = self._sealer.own_copy(header, raw, ack)
                stored = await self._inbox.add(
                    own, completes=Completion(principal.id, idempotency_key, response)
                )
                if stored is not None:
                    for hook in self.on_sealed:
                        hook(stored, header, parts)
        if self._uploads is not None:
            await self._uploads.used(submission.attachments)
        self.accepted += 1
        return Accepted(response=response, replayed=False)


def _parts_for(personal: bool, has_nominal: bool, files: list[FilePart]) -> tuple[str, ...]:
    """What one recipient is given: the case, the nominal block and the personal-data files
    where an agreement allows personal data, and every other file."""
    names = ["case"]
    if has_nominal and personal:
        names.append("nominal")
    names += [f"file-{i}" for i, f in enumerate(files, 1) if personal or not f.nominal]
    return tuple(names)
