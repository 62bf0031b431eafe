"""Issue #11 on real servers: nobody is believed on their word.

The deployment runs as ``make run`` does: the directory is statements signed by the three
agencies' roots, pinned in each node's key directory. Attacks come from a partner node (with the
UZ node's genuine signing key and bus connection) and from the Postgres superuser (this test's
database URL is the superuser's).
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import RecipientKey, seal
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey, public_key_record
from blo_exchange.crypto.receipt import sign_receipt
from blo_exchange.crypto.statements import cosign_statement, sign_statement
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.statements import SqlStatementStore
from blo_exchange.demo.directory import DEMO_AGREEMENTS
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time, new_alert_id
from blo_exchange.domain.statements import agreement_statement, key_statement
from blo_exchange.domain.subjects import DIRECTORY_SUBJECT, alert_subject, receipt_subject
from blo_exchange.services.receipts import deterministic_receipt_id
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has, ledger_has

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"
KG_A, TJ_A, UZ_A = "kg-border-service", "tj-drug-control-agency", "uz-customs-committee"
SUITE = HpkeSuite.MLKEM768_X25519


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys", signed=True) as d:
        yield d


def key() -> dict[str, str]:
    return {"Idempotency-Key": str(uuid.uuid4())}


async def post(deploy: Deployment, node: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await deploy.client(node).post(
        "/v1/alerts", json=body, headers=deploy.terminal(node) | key()
    )
    assert response.status_code == 202, response.text
    result: dict[str, Any] = response.json()
    return result


def forged_header(**header: Any) -> dict[str, Any]:
    """The header of a UZ alert on TJ-UZ, with what the attacker likes in place of it."""
    now = datetime.now(UTC)
    return {
        "alert_id": new_alert_id(now, os.urandom),
        "kind": "seizure",
        "border_pair": "TJ-UZ",
        "crossing_point": "UZ-OYBEK",
        "origin_node": UZ,
        "origin_agency": UZ_A,
        "created_at": format_time(now),
        "tlp": "AMBER",
        "handling": {"scheme": "none", "code": None, "conditions": []},
        "grading": None,
        "agreement_ids": ["mou-tj-uz-2026"],
        "supersedes": None,
        "suite": SUITE.value,
    } | header


async def publish_forgery(
    deploy: Deployment, recipients: dict[str, tuple[str, ...]], **header: Any
) -> str:
    """Sealed to genuine keys and signed with the UZ node's genuine key; published on the UZ
    node's own bus connection."""
    runtime = deploy.runtimes[UZ]
    fields = forged_header(**header)
    parts = {"case": canonical_json({"narrative": {"text": "forged", "lang": "en"}})}
    if any("nominal" in p for p in recipients.values()):
        parts["nominal"] = canonical_json({"persons": [{"name": "A. Person"}]})
    sealed_to = []
    for agency, names in recipients.items():
        key_ = await runtime.directory.current_kem_key(agency, SUITE)
        assert key_ is not None
        sealed_to.append(RecipientKey(agency=agency, key=key_, parts=names))
    raw = seal(fields, parts, sealed_to, runtime.keys.signing)
    subject = alert_subject(fields["border_pair"], fields["kind"])
    await runtime.bus.publish(subject, raw, msg_id=fields["alert_id"])
    return str(fields["alert_id"])


async def rejected(deploy: Deployment, alert_id: str, reason: str) -> None:
    """Refused by the ledger writer, and by the receiving TJ node (its signed receipt)."""
    entries = await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="alert_rejected"),
        what=f"the rejection of {alert_id}",
    )
    reasons = {e["detail"]["reason"] for e in entries}
    assert reason in reasons, entries
    await eventually(
        _both(deploy, alert_id), what="the writer's and the TJ node's rejections", timeout=10
    )
    assert await ledger_has(deploy, KG, alert_id=alert_id, type="alert_shared")() == []
    assert await ledger_has(deploy, KG, alert_id=alert_id, type="alert_delivered")() == []
    feed = await deploy.client(TJ2).get("/v1/feed", headers=deploy.analyst(TJ2))
    assert alert_id not in {i["alert_id"] for i in feed.json()["items"]}


def _both(deploy: Deployment, alert_id: str) -> Any:
    async def probe() -> bool:
        entries = await ledger_has(deploy, KG, alert_id=alert_id, type="alert_rejected")()
        return {e["actor_node"] for e in entries} >= {None, TJ2}

    return probe


async def test_partner_node_attacks_are_refused_by_every_receiver(deploy: Deployment) -> None:
    both = {UZ_A: ("case",), TJ_A: ("case",)}
    # The control: a genuine UZ alert reaches the TJ analyst.
    genuine = await publish_forgery(deploy, both)
    await eventually(feed_has(deploy, TJ2, genuine), what="the genuine UZ alert")
    # (1) Another agency's name; (2) TLP RED on TJ-UZ; (3) KG as a recipient; (4) the nominal
    # block where the MoU allows none.
    await rejected(
        deploy, await publish_forgery(deploy, both, origin_agency=TJ_A), "wrong_origin_agency"
    )
    await rejected(
        deploy, await publish_forgery(deploy, both, tlp="RED"), "agreement_not_applicable"
    )
    await rejected(
        deploy,
        await publish_forgery(deploy, both | {KG_A: ("case",)}),
        "recipient_not_allowed",
    )
    await rejected(
        deploy,
        await publish_forgery(deploy, {UZ_A: ("case", "nominal"), TJ_A: ("case", "nominal")}),
        "nominal_not_allowed",
    )


async def test_a_receipt_in_another_agencys_name_and_a_squatted_id(
    deploy: Deployment, database_url: str
) -> None:
    body = copy.deepcopy(EXAMPLE_SEIZURE) | {"border_pair": "TJ-UZ", "crossing_point": "UZ-OYBEK"}
    alert_id = (await post(deploy, UZ, body))["alert_id"]
    await eventually(feed_has(deploy, TJ2, alert_id), what="the alert in the TJ feed")
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            analyst = (
                await conn.execute(
                    text("SELECT id FROM principals WHERE label = :label"),
                    {"label": f"{TJ2} analyst"},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    # UZ publishes first, under the id TJ's feedback used to have (uuid5 of public values),
    # a receipt saying it is TJ's.
    predicted = deterministic_receipt_id(alert_id, TJ2, analyst, "feedback", "seized")
    lie = sign_receipt(
        {
            "receipt_id": predicted,
            "type": "feedback",
            "alert_id": alert_id,
            "node": UZ,
            "agency": TJ_A,
            "border_pair": "TJ-UZ",
            "kind": "seizure",
            "agreement_ids": ["mou-tj-uz-2026"],
            "envelope_sha256": "0" * 64,
            "occurred_at": format_time(datetime.now(UTC)),
            "detail": {"outcome": "seized"},
        },
        deploy.runtimes[UZ].keys.signing,
    )
    await deploy.runtimes[UZ].bus.publish(receipt_subject("TJ-UZ"), lie, msg_id=predicted)
    response = await deploy.client(TJ2).post(
        f"/v1/alerts/{alert_id}/receipts",
        json={"type": "feedback", "outcome": "seized"},
        headers=deploy.analyst(TJ2),
    )
    assert response.status_code == 202, response.text
    # TJ's real feedback is in the ledger, in TJ's name; the lie is a rejection, in nobody's.
    feedback = await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="feedback"), what="TJ's feedback"
    )
    assert [(e["actor_node"], e["actor_agency"]) for e in feedback] == [(TJ2, TJ_A)]
    refused = await eventually(
        ledger_has(deploy, KG, type="alert_rejected"), what="the lie refused"
    )
    assert "wrong_agency" in {e["detail"]["reason"] for e in refused}


async def test_rows_planted_by_the_database_superuser_are_never_used(
    deploy: Deployment, database_url: str
) -> None:
    assert deploy.runtimes[KG].trusted is not None
    genuine = await deploy.runtimes[KG].trusted.current_kem_key(TJ_A, SUITE)
    assert genuine is not None
    planted = KemPrivateKey.generate(SUITE).public_key()
    later = datetime.now(UTC) + timedelta(hours=1)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            # A newer TJ encryption key, UZ added to the KG-TJ agreement, the UZ node serving
            # KG-TJ: straight into the directory tables...
            await conn.execute(
                text(
                    "INSERT INTO public_keys (key_id, owner_kind, owner_id, alg, public, "
                    "created_at) VALUES (:k, 'agency', :a, :alg, :p, :t)"
                ),
                {
                    "k": planted.key_id,
                    "a": TJ_A,
                    "alg": SUITE.value,
                    "p": planted.public,
                    "t": later,
                },
            )
            await conn.execute(
                text(
                    "UPDATE agreements SET parties = parties || ARRAY[:uz] "
                    "WHERE id = 'mou-kg-tj-2026'"
                ),
                {"uz": UZ_A},
            )
            await conn.execute(
                text("UPDATE nodes SET border_pairs = ARRAY['KG-TJ', 'TJ-UZ'] WHERE id = :n"),
                {"n": UZ},
            )
        # ...and as statements, signed by roots the operator made up in the agencies' names.
        fake = {a: SigningKey.generate() for a in (KG_A, TJ_A, UZ_A)}
        store = SqlStatementStore(session_factory(engine))
        body = key_statement(
            agency=TJ_A,
            owner_kind="agency",
            owner_id=TJ_A,
            key=public_key_record(planted),
            issued_at=later,
        )
        assert await store.add(sign_statement(body, agency=TJ_A, root=fake[TJ_A]))
        widened = DEMO_AGREEMENTS[0].model_copy(update={"parties": (KG_A, TJ_A, UZ_A)})
        raw = sign_statement(
            agreement_statement(widened, issued_at=later), agency=KG_A, root=fake[KG_A]
        )
        for party in (TJ_A, UZ_A):
            raw = cosign_statement(raw, agency=party, root=fake[party])
        assert await store.add(raw)
    finally:
        await engine.dispose()
    deploy.invalidate_directories()

    # The next KG alert goes to KG and TJ only, sealed to TJ's genuine key.
    accepted = await post(deploy, KG, EXAMPLE_SEIZURE)
    assert accepted["recipients"] == [KG_A, TJ_A]
    item = await eventually(feed_has(deploy, TJ, accepted["alert_id"]), what="the TJ feed")
    assert item["nominal"]["persons"][0]["name"] == "Example Driver"
    stored = await deploy.runtimes[TJ].inbox.get(TJ, accepted["alert_id"])
    assert stored is not None
    recipients = json.loads(stored.envelope)["recipients"]
    assert {r["agency"]: r["key_id"] for r in recipients}[TJ_A] == genuine.key_id
    assert genuine.key_id != planted.key_id
    # A UZ alert on KG-TJ is still a pair the UZ node does not serve.
    forged = await publish_forgery(
        deploy,
        {UZ_A: ("case",), TJ_A: ("case",)},
        border_pair="KG-TJ",
        crossing_point="UZ-OYBEK",
        agreement_ids=["mou-kg-tj-2026"],
    )
    entries = await eventually(
        ledger_has(deploy, KG, alert_id=forged, type="alert_rejected"), what="the rejection"
    )
    assert {e["detail"]["reason"] for e in entries} == {"pair_not_served"}
    # The directory served is the signed one, statements included, for anyone to check.
    directory = (await deploy.client(TJ).get("/v1/directory", headers=deploy.analyst(TJ))).json()
    assert planted.key_id not in {k["key_id"] for k in directory["keys"]}
    kg_tj = next(a for a in directory["agreements"] if a["id"] == "mou-kg-tj-2026")
    assert kg_tj["parties"] == [KG_A, TJ_A]
    assert len(directory["statements"]) == 3 + 4 * 3 + 2 + 1  # + witness keys, ledger key
    assert {r["agency"] for r in directory["pinned_roots"]} == {KG_A, TJ_A, UZ_A}


async def test_statements_travel_on_the_directory_stream(deploy: Deployment) -> None:
    """TJ's root registers a new encryption key by publishing it on NATS: every node copies it,
    verified, the next alert is sealed to it, and the ledger records it. A statement signed by a
    root nobody pinned travels too, and is kept by no one."""
    bus = deploy.runtimes[KG].bus
    info = await bus.js.stream_info("BLO_DIRECTORY")
    assert (info.config.deny_delete, info.config.deny_purge) == (True, True)
    new_key = KemPrivateKey.generate(SUITE).public_key()
    body = key_statement(
        agency=TJ_A,
        owner_kind="agency",
        owner_id=TJ_A,
        key=public_key_record(new_key),
        issued_at=datetime.now(UTC) + timedelta(seconds=1),
    )
    forged = sign_statement(body, agency=TJ_A, root=SigningKey.generate())
    genuine = sign_statement(body, agency=TJ_A, root=deploy.seed.roots[TJ_A])
    for raw in (forged, genuine):
        await bus.publish(DIRECTORY_SUBJECT, raw, msg_id=hashlib.sha256(raw).hexdigest())

    async def sealed_to_new_key() -> bool:
        trusted = deploy.runtimes[KG].trusted
        assert trusted is not None
        key_ = await trusted.current_kem_key(TJ_A, SUITE)
        return key_ is not None and key_.key_id == new_key.key_id

    await eventually(sealed_to_new_key, what="KG sealing to TJ's new key")
    entries = await eventually(
        ledger_has(deploy, KG, type="key_registered"), what="the new key in the ledger"
    )
    await eventually(_key_ledgered(deploy, new_key.key_id), what="key_registered for the new key")
    assert entries
    store = SqlStatementStore(session_factory(deploy.runtimes[KG].engine))
    kept = await store.all()
    assert genuine in kept
    assert forged not in kept


def _key_ledgered(deploy: Deployment, key_id: str) -> Any:
    async def probe() -> bool:
        entries = await ledger_has(deploy, KG, type="key_registered")()
        return key_id in {e["detail"].get("key_id") for e in entries}

    return probe
