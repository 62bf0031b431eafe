"""ReshareService with fakes: who may ask, what the origin decides, what the target receives."""

from __future__ import annotations

import copy
import json
from collections.abc import Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import pytest

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.keys import KemPrivateKey
from blo_exchange.crypto.receipt import UnverifiedReceipt, sign_receipt
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER, AlertKind
from blo_exchange.domain.directory import Agreement, Principal, Role
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.marking import Tlp
from blo_exchange.errors import BusError, Conflict, Forbidden, NoAgreement, NotFound, PolicyError
from blo_exchange.services.reshare import ReshareService
from blo_exchange.services.reshare_model import ReshareRequest, ReshareStatus
from tests.unit.services.fakes import FakeInbox
from tests.unit.services.world import NOW, SUITE, World, clock

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
CUSTOMS = "kg-customs"
ALERTS = "blo.v1.alerts.KG-TJ.seizure"
UNKNOWN_ALERT = "019ac95b-6a00-7c3e-9d2b-5f1e0a4c7b21"


@dataclass
class FakeReshareStore:
    rows: dict[tuple[str, str], ReshareRequest] = field(default_factory=dict)

    async def add(self, request: ReshareRequest) -> bool:
        key = (request.node_id, request.request_id)
        if key in self.rows:
            return False
        self.rows[key] = request
        return True

    async def get(self, node_id: str, request_id: str) -> ReshareRequest | None:
        return self.rows.get((node_id, request_id))

    async def for_alert(self, node_id: str, alert_id: str) -> list[ReshareRequest]:
        return [r for (n, _), r in self.rows.items() if n == node_id and r.alert_id == alert_id]

    async def transition(
        self,
        node_id: str,
        request_id: str,
        *,
        allowed_from: Collection[ReshareStatus],
        to: ReshareStatus,
        at: datetime,
        decided_by: str | None = None,
        decision_reason: str | None = None,
        new_alert_id: str | None = None,
        clear_decision: bool = False,
    ) -> ReshareRequest | None:
        row = self.rows.get((node_id, request_id))
        if row is None or row.status not in allowed_from:
            return None
        changes: dict[str, Any] = {"status": to}
        if clear_decision:
            changes |= {"decided_by": None, "decision_reason": None, "new_alert_id": None}
        given = {
            "decided_by": decided_by,
            "decision_reason": decision_reason,
            "new_alert_id": new_alert_id,
        }
        changes |= {k: v for k, v in given.items() if v is not None}
        self.rows[(node_id, request_id)] = replace(row, **changes)
        return self.rows[(node_id, request_id)]


@dataclass
class FakeAgencies:
    known: set[str]

    async def agency_exists(self, agency_id: str) -> bool:
        return agency_id in self.known


@dataclass
class Setup:
    world: World
    inboxes: dict[str, FakeInbox]
    store: FakeReshareStore
    customs_key: KemPrivateKey
    services: dict[str, ReshareService]

    @property
    def published(self) -> list[tuple[str, bytes, str]]:
        return self.world.publisher.published

    def analyst(self, node_id: str, agency: str | None = None) -> Principal:
        return Principal(
            id=f"analyst-{node_id}",
            role=Role.ANALYST,
            agency_id=agency or self.world.node(node_id).agency_id,
            created_at=NOW,
        )

    async def post(self, body: dict[str, Any]) -> str:
        submission = ALERT_SUBMISSION_ADAPTER.validate_python(body)
        ingest = self.world.ingest(KG, inbox=self.inboxes[KG])
        accepted = await ingest.submit(self.world.terminal(KG), submission, f"k-{len(body)}")
        raw = self.published[-1][1]
        delivery = self.world.delivery(TJ, self.inboxes[TJ], self.world.publisher)
        await delivery.handle(ALERTS, raw, len(self.published))
        alert_id: str = accepted.response["alert_id"]
        return alert_id

    def records(self, type_: str) -> list[tuple[str, bytes]]:
        found = []
        for subject, raw, _ in self.published:
            if subject.startswith("blo.v1.receipts."):
                body = UnverifiedReceipt.parse(raw).body
                if body["type"] == type_:
                    found.append((subject, raw))
        return found

    def body(self, raw: bytes) -> dict[str, Any]:
        return UnverifiedReceipt.parse(raw).body


def customs_agreement(**changes: Any) -> Agreement:
    return Agreement(
        id="mou-kg-customs",
        title="KG border service and customs",
        parties=("kg-border-service", CUSTOMS),
        border_pairs=("KG-TJ",),
        kinds=(AlertKind.SEIZURE,),
        max_tlp=Tlp.AMBER,
        nominal=False,
        valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        memorandum_ref="KG/CUSTOMS",
    ).model_copy(update=changes)


def setup() -> Setup:
    world = World.demo()
    customs_key = KemPrivateKey.generate(SUITE)
    world.directory.kem_keys[CUSTOMS] = customs_key.public_key()
    inboxes = {KG: FakeInbox(), TJ: FakeInbox()}
    store = FakeReshareStore()
    agencies = FakeAgencies({"kg-border-service", "tj-drug-control-agency", CUSTOMS})
    services = {}
    for node_id in (KG, TJ):
        node = world.node(node_id)
        key = world.agency_keys[node.agency_id]
        services[node_id] = ReshareService(
            node=node,
            signer=world.signing[node_id],
            suite=SUITE,
            kem_keys={key.key_id: key},
            directory=world.directory,
            agencies=agencies,
            inbox=inboxes[node_id],
            store=store,
            publisher=world.publisher,
            clock=clock,
        )
    return Setup(world, inboxes, store, customs_key, services)


def h2() -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_SEIZURE)
    body["handling"] = {"scheme": "europol", "code": "H2"}
    return body


async def test_requests_are_checked_on_the_requesting_node() -> None:
    s = setup()
    alert_id = await s.post(EXAMPLE_SEIZURE)
    tj = s.services[TJ]
    with pytest.raises(NoAgreement):  # no agreement between KG and the customs yet
        await tj.request(s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="r")
    s.world.directory.agreement_list.append(customs_agreement())
    with pytest.raises(PolicyError, match="already a recipient"):
        await tj.request(s.analyst(TJ), alert_id, target_agency="kg-border-service", reason="r")
    with pytest.raises(PolicyError, match="no agency"):
        await tj.request(s.analyst(TJ), alert_id, target_agency="kg-nobody", reason="r")
    with pytest.raises(Forbidden):
        await tj.request(s.world.terminal(TJ), alert_id, target_agency=CUSTOMS, reason="r")
    with pytest.raises(NotFound):
        await tj.request(s.analyst(TJ), UNKNOWN_ALERT, target_agency=CUSTOMS, reason="r")
    assert s.records("reshare_requested") == []

    request = await tj.request(s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="r")
    assert (request.status, request.restricted) == (ReshareStatus.PENDING, False)
    with pytest.raises(Conflict):
        await tj.request(s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="again")
    [(subject, raw)] = s.records("reshare_requested")
    assert subject == "blo.v1.receipts.KG-TJ"
    body = s.body(raw)
    assert body["node"] == TJ
    assert body["detail"]["target_agency"] == CUSTOMS
    assert body["agreement_ids"] == ["mou-kg-customs"]


async def test_unrestricted_request_is_approved_and_sealed_to_the_target() -> None:
    s = setup()
    alert_id = await s.post(EXAMPLE_SEIZURE)
    s.world.directory.agreement_list.append(customs_agreement())
    await s.services[TJ].request(s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="r")
    kg = s.services[KG]
    [(subject, raw)] = s.records("reshare_requested")
    assert await s.services[TJ].handle_record(subject, raw) == "ignored"  # not TJ's alert
    assert await kg.handle_record(subject, raw) == "approved"
    assert await kg.handle_record(subject, raw) == "approved"  # a redelivery: same decision
    [(subject, approval)] = s.records("reshare_approved")
    assert await kg.handle_record(subject, approval) == "executed"
    assert await kg.handle_record(subject, approval) == "ignored"  # carried out once

    [(_, executed)] = s.records("reshare_executed")
    detail = s.body(executed)["detail"]
    assert detail["original_alert_id"] == alert_id
    new_alerts = [raw for subj, raw, msg_id in s.published if msg_id == detail["new_alert_id"]]
    envelope = UnverifiedEnvelope.parse(new_alerts[0])
    assert envelope.header["supersedes"] is None
    assert envelope.origin_node == KG
    assert sorted(envelope.recipient_agencies) == ["kg-border-service", CUSTOMS]
    keys = {s.world.signing[KG].key_id: s.world.signing[KG].verify_key()}
    opened = envelope.verify(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure", recipient_agency=CUSTOMS
    ).open(CUSTOMS, {s.customs_key.key_id: s.customs_key})
    assert set(opened.parts) == {"case"}  # the customs agreement allows no personal data
    assert json.loads(opened.parts["case"])["items"][0]["quantity"] == "12.5"

    # The requesting node follows the state from the origin's records.
    for type_ in ("reshare_approved", "reshare_executed"):
        for subj, raw in s.records(type_):
            await s.services[TJ].handle_record(subj, raw)
    [mine] = await s.services[TJ].requests_for(s.analyst(TJ), alert_id)
    assert (mine.status, mine.new_alert_id) == (ReshareStatus.EXECUTED, detail["new_alert_id"])


async def test_nominal_goes_where_the_agreement_allows_it() -> None:
    s = setup()
    alert_id = await s.post(EXAMPLE_SEIZURE)
    s.world.directory.agreement_list.append(customs_agreement(nominal=True))
    await s.services[TJ].request(s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="r")
    kg = s.services[KG]
    await kg.handle_record(*s.records("reshare_requested")[0])
    await kg.handle_record(*s.records("reshare_approved")[0])
    new_id = s.body(s.records("reshare_executed")[0][1])["detail"]["new_alert_id"]
    raw = next(raw for _, raw, msg_id in s.published if msg_id == new_id)
    envelope = UnverifiedEnvelope.parse(raw)
    keys = {s.world.signing[KG].key_id: s.world.signing[KG].verify_key()}
    opened = envelope.verify(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure", recipient_agency=CUSTOMS
    ).open(CUSTOMS, {s.customs_key.key_id: s.customs_key})
    assert set(opened.parts) == {"case", "nominal"}


async def test_restricted_request_waits_for_the_origin_analyst() -> None:
    s = setup()
    alert_id = await s.post(h2())
    s.world.directory.agreement_list.append(customs_agreement())
    request = await s.services[TJ].request(
        s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="r"
    )
    assert request.restricted
    kg = s.services[KG]
    assert await kg.handle_record(*s.records("reshare_requested")[0]) == "pending"
    assert s.records("reshare_approved") == []
    with pytest.raises(Forbidden):  # the requester's analyst can't decide for the origin
        await kg.decide(s.analyst(TJ), alert_id, request.request_id, approve=True)
    with pytest.raises(NotFound):  # nor on its own node, which did not originate the alert
        await s.services[TJ].decide(s.analyst(TJ), alert_id, request.request_id, approve=True)
    decided = await kg.decide(s.analyst(KG), alert_id, request.request_id, approve=False)
    assert decided.status is ReshareStatus.DENIED
    with pytest.raises(Conflict):
        await kg.decide(s.analyst(KG), alert_id, request.request_id, approve=True)
    [(_, denial)] = s.records("reshare_denied")
    assert s.body(denial)["detail"]["decided_by"] == f"analyst-{KG}"
    assert not any(m.startswith("blo.v1.alerts") and m != ALERTS for m, _, _ in s.published)


async def test_a_record_naming_another_agency_is_refused_by_the_origin() -> None:
    s = setup()
    alert_id = await s.post(EXAMPLE_SEIZURE)
    s.world.directory.agreement_list.append(customs_agreement())
    await s.services[TJ].request(s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="r")
    subject, raw = s.records("reshare_requested")[0]
    body = s.body(raw)
    body["agency"] = "uz-customs-committee"  # TJ's node speaking for UZ, signed by TJ
    body["receipt_id"] = "forged"
    forged = sign_receipt(body, s.world.signing[TJ])
    s.store.rows.clear()
    # The signer may not speak for another agency (services.signed): refused outright, so
    # nothing is decided or published on the strength of it.
    assert await s.services[KG].handle_record(subject, forged) == "refused"
    assert s.records("reshare_denied") == []
    # A record whose signature does not verify is refused outright.
    tampered = raw.replace(b'"reason":"r"', b'"reason":"s"')
    assert await s.services[KG].handle_record(subject, tampered) == "refused"


async def test_a_decision_the_bus_did_not_take_is_undone() -> None:
    s = setup()
    alert_id = await s.post(h2())
    s.world.directory.agreement_list.append(customs_agreement())
    request = await s.services[TJ].request(
        s.analyst(TJ), alert_id, target_agency=CUSTOMS, reason="r"
    )
    kg = s.services[KG]
    await kg.handle_record(*s.records("reshare_requested")[0])
    s.world.publisher.fail = True
    with pytest.raises(BusError):
        await kg.decide(s.analyst(KG), alert_id, request.request_id, approve=True)
    row = await s.store.get(KG, request.request_id)
    assert row is not None
    assert (row.status, row.new_alert_id) == (ReshareStatus.PENDING, None)
    s.world.publisher.fail = False
    approved = await kg.decide(s.analyst(KG), alert_id, request.request_id, approve=True)
    assert approved.status is ReshareStatus.APPROVED
    # Approving again is a retry, not a new decision: same record id, nothing new in the stream.
    before = len(s.published)
    again = await kg.decide(s.analyst(KG), alert_id, request.request_id, approve=True)
    assert again.new_alert_id == approved.new_alert_id
    assert len(s.published) == before
