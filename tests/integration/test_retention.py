"""The personal-data lifecycle on real servers, on a fake clock (docs/retention.md).

KG seals an alert with a nominal block to TJ under the KG-TJ MoU (30 days, at most 90). The
originator's analyst gets a review task; when the retention ends, TJ's node destroys the key that
opens the nominal part, the case still opens and the nominal part no longer can, even with TJ's
agency key and the database row, and the ledger holds a ``nominal_erased`` receipt from every
recipient node. Negative: an extension from a non-originator, or beyond the agreement's maximum,
is refused by the recipient; a ``nominal_erased`` receipt naming another agency than its signing
node's is refused by the ledger writer.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.receipt import record_message_id, sign_receipt
from blo_exchange.crypto.retention import open_nominal
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time, parse_time, utc_now
from blo_exchange.domain.subjects import receipt_subject
from blo_exchange.errors import InvalidEnvelope
from blo_exchange.interop.taxii import collection_id
from blo_exchange.services.receipts import ReceiptType
from blo_exchange.services.search_index import NOMINAL
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has, ledger_has

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
KG_AGENCY, TJ_AGENCY = "kg-border-service", "tj-drug-control-agency"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, days: int) -> None:
        self.now += timedelta(days=days)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(utc_now())


@pytest.fixture
async def deploy(
    database_url: str, nats_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys", retention_clock=clock) as d:
        yield d


async def post_alert(deploy: Deployment) -> dict[str, Any]:
    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    accepted: dict[str, Any] = response.json()
    await eventually(feed_has(deploy, TJ, accepted["alert_id"]), what="the alert at TJ")
    return accepted


async def reviews(deploy: Deployment, node: str) -> list[dict[str, Any]]:
    response = await deploy.client(node).get(
        "/v1/retention/reviews", params={"within_days": 14}, headers=deploy.analyst(node)
    )
    assert response.status_code == 200, response.text
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


async def taxii_objects(deploy: Deployment) -> str:
    """TJ's TAXII collection of the pair, as its analyst's poller reads it."""
    collection = collection_id(TJ, "KG-TJ")
    response = await deploy.client(TJ).get(
        f"/taxii2/{TJ}/collections/{collection}/objects/",
        headers=deploy.analyst(TJ) | {"Accept": "application/taxii+json;version=2.1"},
    )
    assert response.status_code == 200, response.text
    return response.text


def day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


async def nominal_search_keys(deploy: Deployment, node: str, alert_id: str) -> int:
    """How many search-index keys the node holds from the alert's nominal part."""
    runtime = deploy.runtimes[node]
    assert runtime.lookout is not None
    await runtime.lookout.index.catch_up()
    async with runtime.engine.connect() as conn:
        count = await conn.scalar(
            text(
                "SELECT count(*) FROM search_keys"
                " WHERE node_id = :n AND alert_id = :a AND source = :s"
            ),
            {"n": node, "a": alert_id, "s": NOMINAL},
        )
    return int(count or 0)


async def test_nominal_block_expires_at_every_recipient_and_the_ledger_says_so(
    deploy: Deployment, clock: FakeClock, tmp_path: Path
) -> None:
    accepted = await post_alert(deploy)
    alert_id = accepted["alert_id"]
    created = parse_time(accepted["created_at"])
    expires = datetime.combine((created + timedelta(days=30)).date(), datetime.min.time(), UTC)
    item = await feed_has(deploy, TJ, alert_id)()
    assert item["nominal"]["persons"][0]["name"] == "Example Driver"  # before: it opens
    assert "Example Driver" in await taxii_objects(deploy)
    assert await nominal_search_keys(deploy, TJ, alert_id) > 0

    # The row TJ stored has no nominal ciphertext: TJ's agency key opens the case only.
    tj = deploy.runtimes[TJ]
    stored = await tj.inbox.get(TJ, alert_id)
    assert stored is not None
    keys = await tj.directory.verify_keys("node", KG, created)
    verified = UnverifiedEnvelope.parse(stored.envelope).verify_signature_only(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure"
    )
    assert verified.redacted_parts == ("nominal",)
    assert set(verified.open(TJ_AGENCY, tj.keys.kem).parts) == {"case"}
    assert tj.retention is not None
    vault = await tj.retention.sweeper._store.get(TJ, alert_id)
    assert vault is not None
    assert vault.sealed is not None
    assert vault.expires_at == expires
    assert vault.agreement_id == "mou-kg-tj-2026"
    epoch_file = tmp_path / "keys" / TJ / "retention" / f"{day(expires)}.key"
    assert epoch_file.stat().st_mode & 0o777 == 0o600

    # (1) No review task yet; 20 days on, the originator's analyst has one (TJ's has none).
    assert alert_id not in [t["alert_id"] for t in await reviews(deploy, KG)]
    clock.advance(20)
    tasks = {t["alert_id"]: t for t in await reviews(deploy, KG)}
    assert tasks[alert_id]["expires_at"] == format_time(expires)
    assert tasks[alert_id]["agreement_id"] == "mou-kg-tj-2026"
    assert await reviews(deploy, TJ) == []
    expired = await deploy.client(KG).post(
        f"/v1/retention/reviews/{alert_id}/expire", headers=deploy.analyst(KG)
    )
    assert expired.status_code == 200
    assert expired.json()["decision"] == "expire"

    # (2) Before the end a sweep erases nothing; after it, TJ destroys the key.
    assert await tj.retention.sweeper.sweep() == 0
    clock.advance(11)
    assert await tj.retention.sweeper.sweep() == 1
    assert not epoch_file.exists()

    # (3) The case still opens at TJ; the nominal part no longer does, not even from the old
    # vault row (a database backup) with the agency key at hand.
    item = await feed_has(deploy, TJ, alert_id)()
    assert "nominal" not in item
    assert "Example Driver" not in await taxii_objects(deploy)
    assert await nominal_search_keys(deploy, TJ, alert_id) == 0  # the index forgot them too
    assert item["case"]["items"][0]["quantity"] == "12.5"
    erased = await tj.retention.sweeper._store.get(TJ, alert_id)
    assert erased is not None
    assert erased.sealed is None
    assert erased.erased_at == clock.now
    with pytest.raises(InvalidEnvelope):
        open_nominal(vault.sealed, None, alert_id=alert_id)
    with pytest.raises(InvalidEnvelope):
        open_nominal(vault.sealed, b"\0" * 32, alert_id=alert_id)  # a guess opens nothing

    # (4) The ledger holds a nominal_erased receipt from every node that received the block.
    delivered = await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="alert_delivered"), what="delivery"
    )
    receipts = await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="nominal_erased"), what="the receipt"
    )
    assert {e["actor_node"] for e in receipts} == {e["actor_node"] for e in delivered} == {TJ}
    assert receipts[0]["actor_agency"] == TJ_AGENCY
    assert receipts[0]["detail"]["agreement_id"] == "mou-kg-tj-2026"

    # (5) The auditor's report: erased at TJ under the MoU, nothing overdue.
    async def report() -> Any:
        response = await deploy.client(KG).get("/v1/ledger/retention", headers=deploy.auditor)
        assert response.status_code == 200, response.text
        sections = {s["agreement_id"]: s for s in response.json()["agreements"]}
        return sections.get("mou-kg-tj-2026")

    section = await eventually(report, what="the retention report")
    assert [(e["alert_id"], e["node"]) for e in section["erased"]] == [(alert_id, TJ)]
    assert section["overdue"] == []


async def test_overdue_until_erased_and_extensions_only_by_the_originator(
    deploy: Deployment, clock: FakeClock
) -> None:
    accepted = await post_alert(deploy)
    alert_id = accepted["alert_id"]
    created = parse_time(accepted["created_at"])
    tj = deploy.runtimes[TJ]
    assert tj.retention is not None
    store = tj.retention.sweeper._store
    clock.advance(20)

    # Beyond the agreement's maximum (90 days): refused at the originator's API…
    too_far = (created + timedelta(days=120)).date().isoformat()
    refused = await deploy.client(KG).post(
        f"/v1/retention/reviews/{alert_id}/keep",
        json={"until": too_far, "reason": "investigation open"},
        headers=deploy.analyst(KG),
    )
    assert refused.status_code == 422, refused.text
    assert "beyond what the agreement allows" in refused.json()["detail"]
    # …and a TJ analyst may not keep KG's alert at all.
    foreign = await deploy.client(TJ).post(
        f"/v1/retention/reviews/{alert_id}/keep",
        json={"until": too_far, "reason": "x"},
        headers=deploy.analyst(TJ),
    )
    assert foreign.status_code == 404

    # …and by the recipient, when KG's node signs it anyway; so is one from TJ's own node.
    before = await store.get(TJ, alert_id)
    assert before is not None
    for node, until in ((KG, created + timedelta(days=120)), (TJ, created + timedelta(days=60))):
        await deploy.runtimes[node].receipts.send(
            receipt_id=str(uuid.uuid4()),
            type=ReceiptType.NOMINAL_RETENTION_EXTENDED,
            border_pair="KG-TJ",
            alert_id=alert_id,
            kind="seizure",
            agreement_ids=["mou-kg-tj-2026"],
            envelope_sha256=None,
            detail={"until": format_time(until), "reason": "more time", "agreement_id": "x"},
        )
    counts = tj.retention.reviews.counts
    await eventually(
        lambda: _async(counts["beyond_maximum"] == 1 and counts["not_originator"] == 1),
        what="both refusals",
    )
    assert (await store.get(TJ, alert_id)) == before
    metrics = (await deploy.client(TJ).get("/metrics")).text
    assert 'blo_retention_total{node="blo-karamyk-tj",outcome="not_originator"} 1.0' in metrics
    # The demo's streams keep every envelope for ever: the node says it outlives the retention.
    assert 'blo_retention_stream_outlives{node="blo-karamyk-tj"} 1.0' in metrics

    # A keep within the maximum, by the originator's analyst, reaches TJ.
    new_day = (created + timedelta(days=60)).date()
    kept = await deploy.client(KG).post(
        f"/v1/retention/reviews/{alert_id}/keep",
        json={"until": new_day.isoformat(), "reason": "case before the court"},
        headers=deploy.analyst(KG),
    )
    assert kept.status_code == 200, kept.text
    new_end = datetime.combine(new_day, datetime.min.time(), UTC)

    async def extended() -> Any:
        row = await store.get(TJ, alert_id)
        return row is not None and row.expires_at == new_end

    await eventually(extended, what="the extension at TJ")
    clock.advance(15)  # past the original 30 days: kept, so nothing to erase
    assert await tj.retention.sweeper.sweep() == 0
    assert "nominal" in await feed_has(deploy, TJ, alert_id)()

    # Past the new end, before TJ sweeps: overdue in the auditors' report.
    clock.advance(30)

    async def section() -> Any:
        response = await deploy.client(KG).get(
            "/v1/ledger/retention",
            params={"at": format_time(clock.now)},
            headers=deploy.auditor,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        return {s["agreement_id"]: s for s in body["agreements"]}.get("mou-kg-tj-2026"), body

    async def extension_counted() -> Any:
        found, body = await section()
        late = [] if found is None else found["overdue"]
        return body if [e["expired_at"] for e in late] == [format_time(new_end)] else None

    body = await eventually(extension_counted, what="the extension in the ledger")
    overdue = {s["agreement_id"]: s for s in body["agreements"]}["mou-kg-tj-2026"]
    assert [(e["alert_id"], e["node"]) for e in overdue["overdue"]] == [(alert_id, TJ)]
    # The ledger recorded both refused extensions, each under its signing node's agency.
    ignored = {(e["node"], e["agency"]) for e in body["refused_extensions"]}
    assert (TJ, TJ_AGENCY) in ignored
    assert await tj.retention.sweeper.sweep() == 1


async def test_ledger_refuses_an_erasure_receipt_naming_another_agency(
    deploy: Deployment,
) -> None:
    # KG's node signs a nominal_erased receipt that claims to speak for TJ.
    kg = deploy.runtimes[KG]
    receipt_id = str(uuid.uuid4())
    body: dict[str, Any] = {
        "receipt_id": receipt_id,
        "type": "nominal_erased",
        "alert_id": str(uuid.uuid4()),
        "node": KG,
        "agency": TJ_AGENCY,
        "border_pair": "KG-TJ",
        "kind": "seizure",
        "agreement_ids": ["mou-kg-tj-2026"],
        "envelope_sha256": None,
        "occurred_at": format_time(utc_now()),
        "detail": {},
    }
    await kg.bus.publish(
        receipt_subject("KG-TJ"),
        sign_receipt(body, kg.keys.signing),
        msg_id=record_message_id(receipt_id, kg.keys.signing),
    )
    rejected = await eventually(_rejected_as(deploy, "wrong_agency"), what="the writer's rejection")
    assert rejected["actor_node"] is None
    assert rejected["detail"]["by"] == "ledger-writer"
    erased = await ledger_has(deploy, KG, type="nominal_erased")()
    assert all(e["detail"].get("receipt_id") != receipt_id for e in erased)


async def _async(value: bool) -> bool:
    return value


def _rejected_as(deploy: Deployment, reason: str) -> Any:
    async def probe() -> Any:
        entries = await ledger_has(deploy, KG, type="alert_rejected")()
        return next((e for e in entries if e["detail"].get("reason") == reason), None)

    return probe
