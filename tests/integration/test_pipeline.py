"""The core path on real servers: a KG terminal's alert → NATS → the TJ analyst's feed → ledger.

Four demo nodes and a ledger writer run in this process against a real nats-server and Postgres.
"""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from blo_exchange.bootstrap.app import create_app
from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.ids import parse_time
from blo_exchange.errors import InvalidEnvelope
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has, ledger_has

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def post(deploy: Deployment, node: str, body: dict[str, Any], **headers: str) -> Any:
    return await deploy.client(node).post(
        "/v1/alerts", json=body, headers=deploy.terminal(node) | key() | headers
    )


async def test_kg_alert_reaches_tj_feed_and_ledger_but_not_uz(deploy: Deployment) -> None:
    response = await post(deploy, KG, EXAMPLE_SEIZURE)
    assert response.status_code == 202, response.text
    accepted = response.json()
    alert_id = accepted["alert_id"]
    assert accepted["recipients"] == ["kg-border-service", "tj-drug-control-agency"]
    assert accepted["agreement_ids"] == ["mou-kg-tj-2026"]
    assert accepted["stream_seq"] >= 1

    item = await eventually(feed_has(deploy, TJ, alert_id), what="the alert in the TJ feed")
    assert item["header"]["origin_node"] == KG
    assert item["header"]["origin_agency"] == "kg-border-service"
    assert item["case"]["items"][0]["quantity"] == "12.5"
    assert item["nominal"]["persons"][0]["name"] == "Example Driver"  # the KG-TJ MoU allows it

    entries = await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="alert_delivered"),
        what="the delivery in the ledger",
    )
    assert entries[0]["actor_node"] == TJ

    # Once a checkpoint covers them, the auditors' API gives the same entries.
    async def served() -> Any:
        response = await deploy.client(KG).get(
            "/v1/ledger/entries",
            params={"alert_id": alert_id, "type": "alert_delivered"},
            headers=deploy.auditor,
        )
        assert response.status_code == 200, response.text
        return response.json()["entries"]

    assert await eventually(served, what="the checkpointed entries") == entries
    shared = (await ledger_has(deploy, KG, alert_id=alert_id, type="alert_shared")())[0]
    assert shared["actor_node"] == KG
    assert shared["recipients"] == ["kg-border-service", "tj-drug-control-agency"]
    assert shared["agreement_ids"] == ["mou-kg-tj-2026"]
    assert "12.5" not in json.dumps(shared)  # the ledger holds metadata, never content

    # UZ is outside the KG-TJ agreement: not in its feed, not readable through its node…
    feed = await deploy.client(UZ).get("/v1/feed", headers=deploy.analyst(UZ))
    assert feed.status_code == 200
    assert feed.json()["items"] == []
    denied = await deploy.client(UZ).get(f"/v1/alerts/{alert_id}", headers=deploy.analyst(UZ))
    assert denied.status_code == 404
    # …and UZ's agency key cannot open the envelope, even handed the raw bytes.
    stored = await deploy.runtimes[TJ].inbox.get(TJ, alert_id)
    assert stored is not None
    envelope = UnverifiedEnvelope.parse(stored.envelope)
    keys = await deploy.runtimes[TJ].directory.verify_keys("node", KG, envelope_time(envelope))
    verified = envelope.verify_signature_only(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure"
    )
    with pytest.raises(InvalidEnvelope):
        verified.open("uz-customs-committee", deploy.runtimes[UZ].keys.kem)
    with pytest.raises(InvalidEnvelope):
        verified.open("tj-drug-control-agency", deploy.runtimes[UZ].keys.kem)


def envelope_time(envelope: UnverifiedEnvelope) -> datetime:
    return parse_time(envelope.header["created_at"])


async def test_origin_terminal_reads_its_alert_and_analyst_acknowledges(deploy: Deployment) -> None:
    alert_id = (await post(deploy, KG, EXAMPLE_RISK)).json()["alert_id"]
    own = await deploy.client(KG).get(f"/v1/alerts/{alert_id}", headers=deploy.terminal(KG))
    assert own.status_code == 200
    assert own.json()["case"]["subject"] == EXAMPLE_RISK["case"]["subject"]

    await eventually(feed_has(deploy, TJ, alert_id), what="delivery to TJ")
    ack = await deploy.client(TJ).post(
        f"/v1/alerts/{alert_id}/receipts", json={"type": "acknowledged"}, headers=deploy.analyst(TJ)
    )
    assert ack.status_code == 202, ack.text
    feedback = await deploy.client(TJ).post(
        f"/v1/alerts/{alert_id}/receipts",
        json={"type": "feedback", "outcome": "seized"},
        headers=deploy.analyst(TJ),
    )
    assert feedback.status_code == 202, feedback.text
    acked = await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="alert_acknowledged"), what="the ack"
    )
    assert acked[0]["actor_agency"] == "tj-drug-control-agency"
    fed = await eventually(ledger_has(deploy, KG, alert_id=alert_id, type="feedback"), what="fb")
    assert fed[0]["detail"]["outcome"] == "seized"

    # An analyst of an agency that is not a recipient can't acknowledge it.
    other = await deploy.client(UZ).post(
        f"/v1/alerts/{alert_id}/receipts", json={"type": "acknowledged"}, headers=deploy.analyst(UZ)
    )
    assert other.status_code == 404


async def test_idempotency_key_replay_mismatch_and_required(deploy: Deployment) -> None:
    headers = key()
    first = await post(deploy, KG, EXAMPLE_SEIZURE, **headers)
    again = await post(deploy, KG, EXAMPLE_SEIZURE, **headers)
    assert first.status_code == again.status_code == 202
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"

    changed = copy.deepcopy(EXAMPLE_SEIZURE)
    changed["case"]["items"][0]["quantity"] = "13"
    mismatch = await post(deploy, KG, changed, **headers)
    assert mismatch.status_code == 422
    assert mismatch.headers["content-type"] == "application/problem+json"

    missing = await deploy.client(KG).post(
        "/v1/alerts", json=EXAMPLE_SEIZURE, headers=deploy.terminal(KG)
    )
    assert missing.status_code == 400  # the IETF Idempotency-Key draft: a malformed request
    assert "idempotency-key" in missing.json()["detail"].lower()

    # One alert in the stream for the two accepted requests.
    shared = await eventually(
        ledger_has(deploy, KG, type="alert_shared", alert_id=first.json()["alert_id"]),
        what="the shared entry",
    )
    assert len(shared) == 1
    info = await deploy.runtimes[KG].bus.js.stream_info("BLO_ALERTS")
    assert info.state.messages == 1


async def test_refusals_are_problem_json(deploy: Deployment) -> None:
    red = copy.deepcopy(EXAMPLE_SEIZURE)
    red["tlp"] = "RED"  # above the KG-TJ MoU's AMBER+STRICT: no agreement covers it
    refused = await post(deploy, KG, red)
    assert refused.status_code == 422
    assert "no sharing agreement" in refused.json()["detail"]

    bad = copy.deepcopy(EXAMPLE_SEIZURE)
    bad["case"]["items"][0]["quantity"] = 12.5  # floats are never accepted
    invalid = await post(deploy, KG, bad)
    assert invalid.status_code == 422
    assert invalid.json()["errors"][0]["field"] == "case.items.0.quantity"

    forged = copy.deepcopy(EXAMPLE_SEIZURE)
    forged["origin_agency"] = "tj-drug-control-agency"  # origin comes from the token only
    assert (await post(deploy, KG, forged)).status_code == 422

    tj_uz = copy.deepcopy(EXAMPLE_SEIZURE) | {
        "border_pair": "TJ-UZ",
        "crossing_point": "TJ-FOTEHOBOD",
    }
    assert (await post(deploy, KG, tj_uz)).status_code == 403  # not a pair KG's node serves

    as_analyst = await deploy.client(KG).post(
        "/v1/alerts", json=EXAMPLE_SEIZURE, headers=deploy.analyst(KG) | key()
    )
    assert as_analyst.status_code == 403
    anonymous = await deploy.client(KG).post("/v1/alerts", json=EXAMPLE_SEIZURE, headers=key())
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == "Bearer"
    # A terminal token works only on its own node: elsewhere it is no credential at all.
    elsewhere = await deploy.client(TJ).post(
        "/v1/alerts", json=EXAMPLE_SEIZURE, headers=deploy.terminal(KG) | key()
    )
    assert elsewhere.status_code == 401  # another node's principal is not admitted
    not_auditor = await deploy.client(KG).get("/v1/ledger/entries", headers=deploy.analyst(KG))
    assert not_auditor.status_code == 403

    info = await deploy.runtimes[KG].bus.js.stream_info("BLO_ALERTS")
    assert info.state.messages == 0  # nothing refused was published


async def test_malformed_bus_message_is_rejected_recorded_and_consumer_survives(
    deploy: Deployment,
) -> None:
    bus = deploy.runtimes[TJ].bus
    await bus.publish(
        "blo.v1.alerts.KG-TJ.seizure", b'{"v":1,"not":"an envelope"}', msg_id="junk-1"
    )
    good = await post(deploy, KG, EXAMPLE_SEIZURE)
    alert_id = good.json()["alert_id"]
    await eventually(feed_has(deploy, TJ, alert_id), what="the good alert after the bad one")

    rejections = await deploy.runtimes[TJ].inbox.rejections(TJ)
    assert [r.reason for r in rejections] == ["malformed"]
    # Recorded by the ledger writer itself and, through its signed receipt, by each node of the
    # pair that saw it.
    probe = ledger_has(deploy, KG, type="alert_rejected")

    async def from_tj() -> Any:
        entries = await probe()
        return entries if any(e["actor_node"] == TJ for e in entries) else None

    rejected = await eventually(from_tj, what="TJ's rejection in the ledger")
    assert {e["detail"]["reason"] for e in rejected} == {"malformed"}
    feed = (await deploy.client(TJ).get("/v1/feed", headers=deploy.analyst(TJ))).json()
    assert [i["alert_id"] for i in feed["items"]] == [alert_id]


async def test_batch_accepts_each_item_on_its_own(deploy: Deployment) -> None:
    bad = copy.deepcopy(EXAMPLE_SEIZURE)
    del bad["case"]["items"]
    body = {
        "alerts": [
            {"idempotency_key": str(uuid.uuid4()), "alert": EXAMPLE_SEIZURE},
            {"idempotency_key": str(uuid.uuid4()), "alert": bad},
            {"idempotency_key": str(uuid.uuid4()), "alert": EXAMPLE_RISK},
        ]
    }
    response = await deploy.client(KG).post(
        "/v1/alerts:batch", json=body, headers=deploy.terminal(KG)
    )
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202, 422, 202]
    assert "case.items" in results[1]["detail"]


async def test_batch_items_sharing_a_key_run_in_order(deploy: Deployment) -> None:
    key, other = str(uuid.uuid4()), str(uuid.uuid4())
    body = {
        "alerts": [
            {"idempotency_key": key, "alert": EXAMPLE_SEIZURE},
            {"idempotency_key": other, "alert": EXAMPLE_RISK},
            {"idempotency_key": key, "alert": EXAMPLE_SEIZURE},
            {"idempotency_key": key, "alert": EXAMPLE_RISK},
        ]
    }
    response = await deploy.client(KG).post(
        "/v1/alerts:batch", json=body, headers=deploy.terminal(KG)
    )
    results = response.json()["results"]
    assert [r["status"] for r in results] == [202, 202, 202, 422]
    assert [r["index"] for r in results] == [0, 1, 2, 3]
    assert results[2]["alert_id"] == results[0]["alert_id"]  # a replay, not a second alert


async def test_a_batch_posted_again_gets_the_answers_recorded_with_its_copies(
    deploy: Deployment,
) -> None:
    # The chunk's answers are recorded by the statement that stores the own copies (with the
    # retention vault's rows of the seizures' nominal blocks): the retry replays every one.
    items = [
        {"idempotency_key": str(uuid.uuid4()), "alert": EXAMPLE_SEIZURE if n % 2 else EXAMPLE_RISK}
        for n in range(7)
    ]
    first = await deploy.client(KG).post(
        "/v1/alerts:batch", json={"alerts": items}, headers=deploy.terminal(KG)
    )
    again = await deploy.client(KG).post(
        "/v1/alerts:batch", json={"alerts": items}, headers=deploy.terminal(KG)
    )
    assert first.status_code == again.status_code == 200, (first.text, again.text)
    answers = first.json()["results"]
    assert [r["status"] for r in answers] == [202] * 7
    assert again.json()["results"] == answers
    assert len({r["alert_id"] for r in answers}) == 7
    for answer in answers:  # the origin's own copies, readable by its terminal
        got = await deploy.client(KG).get(
            f"/v1/alerts/{answer['alert_id']}", headers=deploy.terminal(KG)
        )
        assert got.status_code == 200, got.text
        assert got.json()["header"]["kind"] == answer["kind"]


async def test_ledger_entries_filters_and_cursor(deploy: Deployment) -> None:
    ids = [(await post(deploy, KG, EXAMPLE_RISK)).json()["alert_id"] for _ in range(3)]
    shared = await eventually(
        _count(ledger_has(deploy, KG, type="alert_shared"), 3), what="three shares"
    )
    assert sorted(e["alert_id"] for e in shared) == sorted(ids)
    indexes = [e["index"] for e in shared]
    assert indexes == sorted(indexes)

    # Auditors' answers cover the entries up to the latest checkpoint (verified against it).
    async def answered() -> Any:
        page = await deploy.client(KG).get(
            "/v1/ledger/entries", params={"type": "alert_shared"}, headers=deploy.auditor
        )
        return len(page.json()["entries"]) == 3

    await eventually(answered, what="a checkpoint covering the shares")
    page = await deploy.client(KG).get(
        "/v1/ledger/entries",
        params={"type": "alert_shared", "limit": "2"},
        headers=deploy.auditor,
    )
    body = page.json()
    assert len(body["entries"]) == 2
    rest = await deploy.client(KG).get(
        "/v1/ledger/entries",
        params={"type": "alert_shared", "cursor": str(body["next_cursor"])},
        headers=deploy.auditor,
    )
    assert [e["alert_id"] for e in body["entries"] + rest.json()["entries"]] == [
        e["alert_id"] for e in shared
    ]
    # UZ appears only in the directory's entries (its keys, its agreement with TJ), in no alert's.
    for_uz = await ledger_has(deploy, KG, agency="uz-customs-committee")()
    assert [e for e in for_uz if e["alert_id"] is not None] == []
    assert {e["type"] for e in for_uz} <= {"key_registered", "agreement_changed"}


def _count(probe: Any, n: int) -> Any:
    async def counted() -> Any:
        entries = await probe()
        return entries if len(entries) >= n else None

    return counted


async def test_directory_and_health(deploy: Deployment) -> None:
    directory = await deploy.client(UZ).get("/v1/directory", headers=deploy.analyst(UZ))
    assert directory.status_code == 200
    body = directory.json()
    assert {a["id"] for a in body["agencies"]} == {
        "kg-border-service",
        "tj-drug-control-agency",
        "uz-customs-committee",
    }
    assert {k["owner_id"] for k in body["keys"] if k["owner_kind"] == "node"} == {KG, TJ, TJ2, UZ}
    assert (await deploy.client(KG).get("/livez")).status_code == 200
    ready = await deploy.client(KG).get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "nats": True,
        "stream": True,
        "database": True,
        "delivery": True,
    }
    assert ready.json()["delivery_backlog"] == 0


async def test_rate_limit_per_principal(deploy: Deployment) -> None:
    runtime = deploy.runtimes[KG]
    settings = runtime.settings.model_copy(update={"rate_limit": 0.5, "rate_burst": 3})
    app = create_app(settings, services=runtime.services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://kg.test") as client:
        statuses = [
            (await client.get("/v1/directory", headers=deploy.terminal(KG))).status_code
            for _ in range(4)
        ]
        assert statuses == [200, 200, 200, 429]
        refused = await client.get("/v1/directory", headers=deploy.terminal(KG))
        assert refused.headers["retry-after"] == "2"
        assert refused.headers["content-type"] == "application/problem+json"
        # Another principal has its own bucket.
        other = await client.get("/v1/directory", headers=deploy.analyst(KG))
        assert other.status_code == 200


async def test_metrics_count_and_time_what_happened(deploy: Deployment) -> None:
    alert_id = (await post(deploy, KG, EXAMPLE_SEIZURE)).json()["alert_id"]
    await eventually(feed_has(deploy, TJ, alert_id), what="delivery to TJ")
    kg = _samples((await deploy.client(KG).get("/metrics")).text)
    tj = _samples((await deploy.client(TJ).get("/metrics")).text)
    node_kg, node_tj = {"node": "blo-karamyk-kg"}, {"node": "blo-karamyk-tj"}
    assert kg[("blo_accepted_total", frozenset(node_kg.items()))] == 1
    assert kg[("blo_publish_seconds_count", frozenset(node_kg.items()))] == 1
    assert kg[("blo_publish_seconds_bucket", frozenset((node_kg | {"le": "+Inf"}).items()))] == 1
    delivered = frozenset((node_tj | {"outcome": "delivered"}).items())
    assert tj[("blo_delivery_total", delivered)] == 1
    assert tj[("blo_delivery_latency_seconds_count", frozenset(node_tj.items()))] == 1
    assert tj[("blo_consumer_pending", frozenset(node_tj.items()))] == 0


def _samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition, parsed by prometheus-client's own parser."""
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
