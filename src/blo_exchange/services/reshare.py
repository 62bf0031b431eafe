"""Re-sharing an alert beyond its recipients, with the originator's recorded permission.

DESIGN §3: RED or H2 alerts can't be re-shared beyond the original recipients without the
originator's recorded permission. There is one path for every re-share, so each is decided and
carried out in the same auditable way:

1. An analyst of a recipient agency asks on its node (``request``); the node checks what it can
   and publishes a signed ``reshare_requested`` record.
2. The alert's **origin node** sees the record on the bus (``handle_record``), checks it again
   (it trusts nothing the requesting node checked), and decides by policy: a request that fails a
   check is ``reshare_denied`` at once; an unrestricted alert's request is ``reshare_approved``
   at once (no permission needed); a restricted one (``restricts_resharing``) waits for an
   analyst of the origin agency to ``decide`` on the origin node.
3. The origin node carries out an approval when it sees its own ``reshare_approved`` record:
   a **new** envelope (new alert id, ``supersedes`` null) with the same case, and the nominal
   block only where an agreement between the origin and the target allows personal data, sealed
   to the target and the origin agency and published as any alert. The link between the two
   alerts is the ``reshare_executed`` record, never a header field (the header is a contract).

Each record is signed by the node that publishes it and lands in the ledger. The ``reason``
travels in those records, so auditors of every party read it: it must carry no personal data.

Not checked: what the reason says; that the target's nodes are up (delivery is the bus's job).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from blo_exchange.crypto.envelope import (
    OpenedEnvelope,
    RecipientKey,
    envelope_sha256,
)
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.crypto.receipt import UnverifiedReceipt, record_message_id, sign_receipt
from blo_exchange.domain.directory import Agreement, Node, Principal, Role
from blo_exchange.domain.ids import format_time, new_alert_id, parse_time
from blo_exchange.domain.marking import Handling, Tlp, restricts_resharing
from blo_exchange.domain.policy import applies
from blo_exchange.domain.subjects import parse_receipt_subject, receipt_subject
from blo_exchange.errors import (
    Conflict,
    DirectoryError,
    Forbidden,
    InvalidEnvelope,
    NoAgreement,
    NotFound,
    PolicyError,
)
from blo_exchange.services.ports import Ack, Directory, Inbox, InboxItem, Publisher
from blo_exchange.services.receipts import deterministic_receipt_id
from blo_exchange.services.reshare_model import (
    MAX_REASON_CHARS,
    RESHARE_RECORD_TYPES,
    AgencyLookup,
    ReshareRecord,
    ReshareRequest,
    ReshareStatus,
    ReshareStore,
)
from blo_exchange.services.sealing import AlertSealer
from blo_exchange.services.signed import SignedMessages

__all__ = ["ReshareService"]

log = logging.getLogger(__name__)

_OPEN = (ReshareStatus.PENDING, ReshareStatus.APPROVED, ReshareStatus.EXECUTED)


@dataclass(frozen=True)
class _Alert:
    """A stored alert this node verified and opened again: its header, recipients and parts."""

    row: InboxItem
    opened: OpenedEnvelope
    recipients: tuple[str, ...]

    @property
    def header(self) -> dict[str, Any]:
        return self.opened.header

    @property
    def restricted(self) -> bool:
        handling = Handling.model_validate(self.header["handling"])
        return restricts_resharing(handling, Tlp(self.header["tlp"]))


class ReshareService:
    def __init__(
        self,
        *,
        node: Node,
        signer: SigningKey,
        suite: HpkeSuite,
        kem_keys: Mapping[str, KemPrivateKey],
        directory: Directory,
        agencies: AgencyLookup,
        inbox: Inbox,
        store: ReshareStore,
        publisher: Publisher,
        clock: Callable[[], datetime],
        rng: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self._node = node
        self._signer = signer
        self._sealer = AlertSealer(
            node=node,
            signer=signer,
            suite=suite,
            directory=directory,
            publisher=publisher,
            rng=rng,
        )
        self._kem_keys = kem_keys
        self._directory = directory
        self._signed = SignedMessages(directory, clock=clock)
        self._agencies = agencies
        self._inbox = inbox
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._rng = rng

    # --- the requesting node ------------------------------------------------------------------

    async def request(
        self, principal: Principal, alert_id: str, *, target_agency: str, reason: str
    ) -> ReshareRequest:
        """An analyst of a recipient agency asks, on its node, to re-share an alert."""
        # (1) An analyst of this node's agency, (2) which received the alert here.
        self._require_analyst(principal)
        alert = await self._alert(alert_id)
        if alert is None:
            raise NotFound("no such alert")
        if len(reason) > MAX_REASON_CHARS or not reason.strip():
            raise PolicyError(f"reason must be 1 to {MAX_REASON_CHARS} characters")
        # (3) The target is known, not a recipient yet, and covered by an agreement in force
        # with the origin agency for this alert's pair, kind and TLP.
        now = self._clock()
        agreements = await self._covering(alert.header, target_agency, alert.recipients, now)
        # (4) One open request per alert and target.
        for existing in await self._store.for_alert(self._node.id, alert_id):
            if existing.target_agency == target_agency and existing.status in _OPEN:
                raise Conflict(
                    f"request {existing.request_id} to re-share to {target_agency} is "
                    f"already {existing.status.value}"
                )
        header = alert.header
        request = ReshareRequest(
            node_id=self._node.id,
            request_id=new_alert_id(now, self._rng),
            alert_id=alert_id,
            border_pair=alert.row.border_pair,
            kind=alert.row.kind,
            tlp=str(header["tlp"]),
            origin_agency=str(header["origin_agency"]),
            origin_node=str(header["origin_node"]),
            requesting_agency=self._node.agency_id,
            requesting_node=self._node.id,
            requested_by=principal.id,
            target_agency=target_agency,
            reason=reason,
            restricted=alert.restricted,
            agreement_ids=tuple(sorted(a.id for a in agreements)),
            status=ReshareStatus.PENDING,
            requested_at=now,
        )
        # Published first: the record is what counts; the row follows from it (the consumer
        # adds it too, should this process die in between).
        await self._record(
            ReshareRecord.REQUESTED,
            request,
            envelope_sha256=alert.row.envelope_sha256,
            detail=_request_detail(request),
        )
        await self._store.add(request)
        return request

    async def requests_for(self, principal: Principal, alert_id: str) -> list[ReshareRequest]:
        """The origin agency's analyst or the origin node's terminal sees every request for the
        alert; a requesting agency's analyst sees its own (its node keeps no others)."""
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or row.agency_id != self._node.agency_id:
            raise NotFound("no such alert")
        analyst = principal.role is Role.ANALYST and principal.agency_id == self._node.agency_id
        terminal = (
            principal.role is Role.TERMINAL
            and principal.node_id == self._node.id
            and principal.agency_id == row.origin_agency
        )
        if not (analyst or terminal):
            raise NotFound("no such alert")
        requests = await self._store.for_alert(self._node.id, alert_id)
        if self._node.agency_id != row.origin_agency:
            requests = [r for r in requests if r.requesting_agency == self._node.agency_id]
        return requests

    # --- the origin node ------------------------------------------------------------------

    async def decide(
        self,
        principal: Principal,
        alert_id: str,
        request_id: str,
        *,
        approve: bool,
        reason: str | None = None,
    ) -> ReshareRequest:
        """An analyst of the origin agency, on the origin node, approves or denies."""
        self._require_analyst(principal)
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or row.origin_node != self._node.id:
            raise NotFound("no such alert")
        request = await self._store.get(self._node.id, request_id)
        if request is None or request.alert_id != alert_id:
            raise NotFound("no such re-share request")
        if reason is not None and len(reason) > MAX_REASON_CHARS:
            raise PolicyError(f"reason must be at most {MAX_REASON_CHARS} characters")
        decided = await self._decide(
            request, approve=approve, decided_by=principal.id, reason=reason
        )
        if decided is not None:
            return decided
        wanted = ReshareStatus.APPROVED if approve else ReshareStatus.DENIED
        current = await self._store.get(self._node.id, request_id)
        if current is not None and current.status is wanted:
            # The same decision again (a retry): publish it again, in case the first attempt
            # died between claiming it and publishing it. Same message id, so no second copy.
            await self._publish_decision(current)
            return current
        state = request.status.value if current is None else current.status.value
        raise Conflict(f"the re-share request is already {state}")

    async def handle_record(self, subject: str, data: bytes) -> str:
        """A record from ``blo.v1.receipts.<PAIR>``; what became of it, for counting.

        Raises only when the node should see the record again (a store or bus failure).
        """
        try:
            unverified = UnverifiedReceipt.parse(data)
        except InvalidEnvelope:
            return "ignored"
        if unverified.body.get("type") not in RESHARE_RECORD_TYPES:
            return "ignored"
        # (1) Signed by a known, unrevoked key of the node it names, on its own pair's subject,
        # (2) and well formed.
        try:
            body = await self._signed.record(unverified)
            if parse_receipt_subject(subject) != body.get("border_pair"):
                raise InvalidEnvelope("subject")
            record = ReshareRecord(body["type"])
            detail = body["detail"]
            request_id = str(detail["request_id"])
            at = parse_time(str(body["occurred_at"]))
            asked = (
                _request_from_record(self._node.id, body)
                if record is ReshareRecord.REQUESTED
                else None
            )
            new_id = (
                str(detail["new_alert_id"])
                if record in (ReshareRecord.APPROVED, ReshareRecord.EXECUTED)
                else None
            )
        except (InvalidEnvelope, ValueError, KeyError, TypeError):
            log.warning("refused a re-share record on %s", subject)
            return "refused"
        if asked is not None:
            return await self._on_requested(asked, requesting_node=str(body["node"]))
        request = await self._store.get(self._node.id, request_id)
        # (3) Decisions and executions count only from the alert's origin node.
        if request is None or body["node"] != request.origin_node:
            return "ignored"
        if record is ReshareRecord.DENIED:
            await self._store.transition(
                self._node.id,
                request_id,
                allowed_from=(ReshareStatus.PENDING, ReshareStatus.APPROVED),
                to=ReshareStatus.DENIED,
                at=at,
                decided_by=_opt_str(detail.get("decided_by")),
                decision_reason=_opt_str(detail.get("decision_reason")),
            )
            return "denied"
        if record is ReshareRecord.EXECUTED:
            await self._store.transition(
                self._node.id,
                request_id,
                allowed_from=(ReshareStatus.PENDING, ReshareStatus.APPROVED),
                to=ReshareStatus.EXECUTED,
                at=at,
                new_alert_id=new_id,
            )
            return "executed"
        approved = await self._store.transition(
            self._node.id,
            request_id,
            allowed_from=(ReshareStatus.PENDING,),
            to=ReshareStatus.APPROVED,
            at=at,
            decided_by=_opt_str(detail.get("decided_by")),
            decision_reason=_opt_str(detail.get("decision_reason")),
            new_alert_id=new_id,
        )
        if self._node.id != request.origin_node:
            return "approved"
        # (4) The origin node carries out its own approvals, and only those.
        current = approved or await self._store.get(self._node.id, request_id)
        if current is None or current.status is not ReshareStatus.APPROVED:
            return "ignored"  # executed already, or denied since
        return await self._execute(replace(current, new_alert_id=new_id))

    async def _on_requested(self, asked: ReshareRequest, *, requesting_node: str) -> str:
        """A ``reshare_requested`` record: the requester keeps its row, the origin decides."""
        if requesting_node == self._node.id:
            # Our own request: make sure our row exists (the API adds it; this covers a crash).
            await self._store.add(asked)
        row = await self._inbox.get(self._node.id, asked.alert_id)
        if row is None or row.origin_node != self._node.id:
            return "ignored"  # not an alert this node originated
        # The origin's checks, in order; it trusts none made by the requesting node.
        now = self._clock()
        alert = await self._alert(asked.alert_id)
        request = asked
        refusal: str | None = None
        try:
            # (a) The requesting node belongs to the agency it speaks for.
            requester = await self._directory.node(requesting_node)
            if requester.agency_id != asked.requesting_agency:
                raise PolicyError("the requesting node does not belong to its agency")
            # (b) The alert still verifies here, and (c) the requester was one of its recipients.
            if alert is None:
                raise PolicyError("the stored alert no longer verifies")
            if asked.requesting_agency not in alert.recipients:
                raise PolicyError("the requesting agency is not a recipient of the alert")
            # (d) The target is known, not a recipient, and covered by an agreement in force
            # between the origin and the target for the alert's pair, kind and TLP.
            agreements = await self._covering(
                alert.header, asked.target_agency, alert.recipients, now
            )
            request = replace(request, agreement_ids=tuple(sorted(a.id for a in agreements)))
        except (PolicyError, DirectoryError) as exc:
            refusal = str(exc)
        if alert is not None:
            # What the origin reads in its own envelope wins over what the requester said.
            request = replace(
                request,
                restricted=alert.restricted,
                tlp=str(alert.header["tlp"]),
                origin_agency=str(alert.header["origin_agency"]),
                origin_node=self._node.id,
            )
        await self._store.add(request)
        current = await self._store.get(self._node.id, request.request_id)
        if current is None:
            return "ignored"
        if current.status in (ReshareStatus.APPROVED, ReshareStatus.DENIED):
            # Decided before, perhaps by a process that died before publishing: again, same id.
            await self._publish_decision(current)
            return current.status.value
        if current.status is not ReshareStatus.PENDING:
            return current.status.value
        if refusal is not None:
            await self._decide(current, approve=False, decided_by="policy", reason=refusal)
            return "denied"
        if current.restricted:
            return "pending"  # (e) RED or H2: the originating agency decides
        await self._decide(current, approve=True, decided_by="policy", reason="unrestricted")
        return "approved"

    async def _decide(
        self, request: ReshareRequest, *, approve: bool, decided_by: str, reason: str | None
    ) -> ReshareRequest | None:
        """Claim the decision in the store, then publish it; undo the claim if the bus fails.
        None when the request was not pending."""
        now = self._clock()
        to = ReshareStatus.APPROVED if approve else ReshareStatus.DENIED
        decided = await self._store.transition(
            self._node.id,
            request.request_id,
            allowed_from=(ReshareStatus.PENDING,),
            to=to,
            at=now,
            decided_by=decided_by,
            decision_reason=reason,
            new_alert_id=new_alert_id(now, self._rng) if approve else None,
        )
        if decided is None:
            return None
        try:
            await self._publish_decision(decided)
        except Exception:
            await self._store.transition(
                self._node.id,
                decided.request_id,
                allowed_from=(to,),
                to=ReshareStatus.PENDING,
                at=now,
                clear_decision=True,
            )
            raise
        return decided

    async def _publish_decision(self, decided: ReshareRequest) -> None:
        """Approvals and denials of one request share one message id: the stream keeps one."""
        approve = decided.status is ReshareStatus.APPROVED
        ack = await self._record(
            ReshareRecord.APPROVED if approve else ReshareRecord.DENIED,
            decided,
            receipt_id=deterministic_receipt_id(decided.request_id, "reshare_decision"),
            detail={
                "request_id": decided.request_id,
                "target_agency": decided.target_agency,
                "decided_by": decided.decided_by,
                "decision_reason": decided.decision_reason,
            }
            | ({"new_alert_id": decided.new_alert_id} if approve else {}),
        )
        if ack.duplicate:
            log.info("decision on re-share request %s was published before", decided.request_id)

    async def _execute(self, request: ReshareRequest) -> str:
        """Seal the same case (and nominal, where allowed) to the target and publish it."""
        if request.new_alert_id is None:
            raise ValueError("an approved re-share has a new alert id")
        now = self._clock()
        alert = await self._alert(request.alert_id)
        if alert is None:
            return await self._lapse(request, "the stored alert no longer verifies")
        header = alert.header
        try:
            agreements = await self._covering(header, request.target_agency, alert.recipients, now)
        except PolicyError as exc:
            # The agreement lapsed (or the target became a recipient) since the approval.
            return await self._lapse(request, str(exc))
        parts = {"case": alert.opened.parts["case"]}
        if "nominal" in alert.opened.parts and any(a.nominal for a in agreements):
            parts["nominal"] = alert.opened.parts["nominal"]
        keys = await self._sealer.keys_for(sorted({self._node.agency_id, request.target_agency}))
        sealed_to = [
            RecipientKey(agency=agency, key=key, parts=tuple(parts)) for agency, key in keys.items()
        ]
        agreement_ids = sorted(a.id for a in agreements)
        new_header = self._sealer.header(
            alert_id=request.new_alert_id,
            kind=str(header["kind"]),
            border_pair=str(header["border_pair"]),
            crossing_point=str(header["crossing_point"]),
            created_at=now,
            tlp=str(header["tlp"]),
            handling=header["handling"],
            grading=header["grading"],
            agreement_ids=agreement_ids,
            supersedes=None,
        )
        raw = self._sealer.seal(new_header, parts, sealed_to)
        ack = await self._sealer.publish(new_header, raw)
        if not ack.duplicate:
            # As in ingest: on a duplicate, the first envelope is in the stream and this node's
            # delivery consumer stores that one.
            await self._inbox.add(self._sealer.own_copy(new_header, raw, ack))
        executed = replace(request, agreement_ids=tuple(agreement_ids))
        await self._record(
            ReshareRecord.EXECUTED,
            executed,
            receipt_id=deterministic_receipt_id(request.request_id, "reshare_executed"),
            envelope_sha256=envelope_sha256(raw),
            detail={
                "request_id": request.request_id,
                "original_alert_id": request.alert_id,
                "new_alert_id": request.new_alert_id,
                "target_agency": request.target_agency,
                "nominal": "nominal" in parts,
            },
        )
        await self._store.transition(
            self._node.id,
            request.request_id,
            allowed_from=(ReshareStatus.APPROVED,),
            to=ReshareStatus.EXECUTED,
            at=now,
        )
        return "executed"

    async def _lapse(self, request: ReshareRequest, reason: str) -> str:
        """An approval that can no longer be carried out: nothing is sent, and that is recorded."""
        await self._store.transition(
            self._node.id,
            request.request_id,
            allowed_from=(ReshareStatus.APPROVED,),
            to=ReshareStatus.DENIED,
            at=self._clock(),
            decided_by="policy",
            decision_reason=reason,
        )
        await self._record(
            ReshareRecord.DENIED,
            request,
            receipt_id=deterministic_receipt_id(request.request_id, "reshare_lapsed"),
            detail={
                "request_id": request.request_id,
                "target_agency": request.target_agency,
                "decided_by": "policy",
                "decision_reason": reason,
            },
        )
        return "denied"

    # --- helpers ------------------------------------------------------------------------------

    def _require_analyst(self, principal: Principal) -> None:
        if principal.role is not Role.ANALYST or principal.agency_id != self._node.agency_id:
            raise Forbidden("only an analyst of this node's agency may do this here")

    async def _alert(self, alert_id: str) -> _Alert | None:
        """The alert in this node's inbox for its agency, verified and opened again."""
        row = await self._inbox.get(self._node.id, alert_id)
        if row is None or row.agency_id != self._node.agency_id:
            return None
        try:
            alert = await self._signed.open_stored(row, kem_keys=self._kem_keys)
        except InvalidEnvelope:
            log.warning("stored alert %s no longer verifies", alert_id)
            return None
        return _Alert(row=row, opened=alert.opened, recipients=tuple(alert.verified.recipients))

    async def _covering(
        self, header: Mapping[str, Any], target: str, recipients: tuple[str, ...], at: datetime
    ) -> list[Agreement]:
        """Agreements in force between the origin and ``target`` that cover the alert; raises
        ``PolicyError`` when the target is unknown or already a recipient, ``NoAgreement`` when
        none covers it."""
        if target in recipients:
            raise PolicyError(f"{target} is already a recipient of this alert")
        if not await self._agencies.agency_exists(target):
            raise PolicyError(f"no agency {target} in the directory")
        origin = str(header["origin_agency"])
        covering = [
            agreement
            for agreement in await self._directory.agreements()
            if target in agreement.parties
            and applies(
                agreement,
                origin_agency=origin,
                border_pair=str(header["border_pair"]),
                kind=str(header["kind"]),
                tlp=Tlp(header["tlp"]),
                at=at,
            )
        ]
        if not covering:
            raise NoAgreement(
                f"no sharing agreement in force between {origin} and {target} covers border "
                f"pair {header['border_pair']}, kind {header['kind']} and TLP {header['tlp']}"
            )
        return covering

    async def _record(
        self,
        type: ReshareRecord,
        request: ReshareRequest,
        *,
        detail: dict[str, Any],
        receipt_id: str | None = None,
        envelope_sha256: str | None = None,
    ) -> Ack:
        """Sign and publish one step as a receipt-shaped record (the ledger writer's format)."""
        receipt_id = receipt_id or deterministic_receipt_id(request.request_id, type.value)
        body = {
            "receipt_id": receipt_id,
            "type": type.value,
            "alert_id": request.alert_id,
            "node": self._node.id,
            "agency": self._node.agency_id,
            "border_pair": request.border_pair,
            "kind": request.kind,
            "agreement_ids": list(request.agreement_ids),
            "envelope_sha256": envelope_sha256,
            "occurred_at": format_time(self._clock()),
            "detail": detail,
        }
        raw = sign_receipt(body, self._signer)
        return await self._publisher.publish(
            receipt_subject(request.border_pair),
            raw,
            msg_id=record_message_id(receipt_id, self._signer),
        )


def _request_detail(request: ReshareRequest) -> dict[str, Any]:
    return {
        "request_id": request.request_id,
        "target_agency": request.target_agency,
        "reason": request.reason,
        "requested_by": request.requested_by,
        "origin_agency": request.origin_agency,
        "origin_node": request.origin_node,
        "tlp": request.tlp,
        "restricted": request.restricted,
    }


def _request_from_record(node_id: str, body: Mapping[str, Any]) -> ReshareRequest:
    detail = body["detail"]
    return ReshareRequest(
        node_id=node_id,
        request_id=str(detail["request_id"]),
        alert_id=str(body["alert_id"]),
        border_pair=str(body["border_pair"]),
        kind=str(body["kind"]),
        tlp=str(detail["tlp"]),
        origin_agency=str(detail["origin_agency"]),
        origin_node=str(detail["origin_node"]),
        requesting_agency=str(body["agency"]),
        requesting_node=str(body["node"]),
        requested_by=str(detail["requested_by"]),
        target_agency=str(detail["target_agency"]),
        reason=str(detail["reason"])[:MAX_REASON_CHARS],
        restricted=bool(detail["restricted"]),
        agreement_ids=tuple(str(a) for a in body.get("agreement_ids") or ()),
        status=ReshareStatus.PENDING,
        requested_at=parse_time(str(body["occurred_at"])),
    )


def _opt_str(value: object) -> str | None:
    return None if value is None else str(value)[:MAX_REASON_CHARS]
