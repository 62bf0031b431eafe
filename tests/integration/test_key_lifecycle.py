"""Key rotation and revocation on a running deployment, driven through the CLI as an operator would.

- Rotating TJ's agency key: new alerts are sealed to the new key, and the TJ node opens both the
  alerts sealed to the old key and those sealed to the new one, without a restart.
- Rotating KG's node key and revoking the old one: an envelope the old key signs after the
  revocation is rejected by TJ (``unknown_key``) and ledgered as ``alert_rejected``; the alert it
  signed before still displays; the restarted node signs with the new key and is delivered.
"""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from blo_exchange.bootstrap.app import create_app
from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.cli.main import app
from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time, utc_now
from blo_exchange.ledger.entries import parse_leaf_input
from blo_exchange.ledger.ports import EntryFilter
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has

KG, TJ, TJ2 = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj"
TJ_AGENCY = "tj-drug-control-agency"


@pytest.fixture
async def deploy(
    database_url: str, nats_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Deployment]:
    monkeypatch.setenv("BLO_DATABASE_URL", database_url)
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def cli(*args: str) -> str:
    """Run ``blo-exchange ARGS`` in a thread (the command runs its own event loop)."""
    result = await asyncio.to_thread(CliRunner().invoke, app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


async def post(deploy: Deployment, client: httpx.AsyncClient | None = None) -> str:
    response = await (client or deploy.client(KG)).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    alert_id: str = response.json()["alert_id"]
    return alert_id


async def ledgered(deploy: Deployment, **filters: Any) -> list[dict[str, Any]]:
    rows = await deploy.writer_host.ledger.entries(EntryFilter(**filters), after=-1, limit=10_000)
    return [parse_leaf_input(leaf) for _, leaf in rows]


async def sealed_to(deploy: Deployment, alert_id: str) -> str:
    stored = await deploy.runtimes[TJ].inbox.get(TJ, alert_id)
    assert stored is not None
    UnverifiedEnvelope.parse(stored.envelope)  # well-formed, so its JSON can be read below
    (entry,) = [r for r in json.loads(stored.envelope)["recipients"] if r["agency"] == TJ_AGENCY]
    return str(entry["key_id"])


async def test_rotating_an_agency_key(deploy: Deployment, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    before = await post(deploy)
    await eventually(feed_has(deploy, TJ, before), what="the first alert at TJ")
    old_key = await sealed_to(deploy, before)

    output = await cli(
        "directory", "rotate-agency-key", "--agency", TJ_AGENCY,
        "--key-dir", str(keys / TJ), "--key-dir", str(keys / TJ2),
    )  # fmt: skip
    listed = (await deploy.client(KG).get("/v1/directory", headers=deploy.terminal(KG))).json()
    tj_keys = [k for k in listed["keys"] if k["owner_id"] == TJ_AGENCY]
    (new,) = [k for k in tj_keys if k["key_id"] != old_key]
    assert new["key_id"] in output
    assert new["revoked_at"] is None
    for node in (TJ, TJ2):
        installed = keys / node / "agency" / f"{new['key_id']}.key"
        assert stat.S_IMODE(installed.stat().st_mode) == 0o600
        assert (keys / node / "agency" / f"{old_key}.key").exists()

    deploy.invalidate_directories()  # as the cache's two seconds running out would
    after = await post(deploy)
    item = await eventually(feed_has(deploy, TJ, after), what="the alert sealed to the new key")
    assert item["nominal"]["persons"][0]["name"] == "Example Driver"
    assert await sealed_to(deploy, after) == new["key_id"]

    # The TJ node opens both, old and new, without a restart.
    for alert_id in (before, after):
        read = await deploy.client(TJ).get(f"/v1/alerts/{alert_id}", headers=deploy.analyst(TJ))
        assert read.status_code == 200, read.text
        assert read.json()["case"]["items"][0]["quantity"] == "12.5"

    registered = await eventually(
        lambda: _with_key(ledgered(deploy, type="key_registered"), new["key_id"]),
        what="the new key in the ledger",
    )
    assert registered[0]["actor_agency"] == TJ_AGENCY


async def _with_key(entries: Any, key_id: str) -> list[dict[str, Any]]:
    return [e for e in await entries if e["detail"]["key_id"] == key_id]


async def test_rotating_and_revoking_a_node_key(deploy: Deployment, tmp_path: Path) -> None:
    keys = tmp_path / "keys" / KG
    kg = deploy.runtimes[KG]
    old_key = kg.keys.signing.key_id
    before = await post(deploy)
    await eventually(feed_has(deploy, TJ, before), what="an alert signed before the revocation")

    output = await cli("directory", "rotate-node-key", "--node", KG, "--key-dir", str(keys))
    archived = keys / f"signing.{old_key}.key"
    assert stat.S_IMODE(archived.stat().st_mode) == 0o600
    assert str(archived) in output
    # The running node keeps signing with the old key until it restarts.
    assert kg.keys.signing.key_id == old_key

    output = await cli("directory", "revoke-key", old_key, "--at", format_time(utc_now()))
    assert f"key {old_key} revoked from" in output
    deploy.invalidate_directories()
    rejected_id = await post(deploy)  # still signed with the revoked key

    async def rejected_at_tj() -> list[Any]:
        return [
            r for r in await deploy.runtimes[TJ].inbox.rejections(TJ) if r.alert_id == rejected_id
        ]

    (rejection,) = await eventually(rejected_at_tj, what="TJ's rejection")
    assert rejection.reason == "unknown_key"
    receipts = await eventually(
        lambda: _rejected_by(ledgered(deploy, type="alert_rejected", alert_id=rejected_id), TJ),
        what="the rejection in the ledger",
    )
    assert receipts[0]["detail"]["reason"] == "unknown_key"
    revoked = await eventually(
        lambda: _with_key(ledgered(deploy, type="key_revoked"), old_key),
        what="the revocation in the ledger",
    )
    assert revoked[0]["actor_node"] == KG

    # The alert signed before the revocation still displays; the rejected one never does.
    feed = (await deploy.client(TJ).get("/v1/feed", headers=deploy.analyst(TJ))).json()
    shown = {i["alert_id"] for i in feed["items"]}
    assert before in shown
    assert rejected_id not in shown

    # The node restarted: it signs with the new key, and TJ delivers again.
    settings = kg.settings.model_copy(update={"run_ledger_writer": False})
    restarted = await NodeRuntime.start(settings)
    try:
        assert restarted.keys.signing.key_id != old_key
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(settings, services=restarted.services)),
            base_url="http://kg-restarted.test",
        ) as client:
            after = await post(deploy, client)
        await eventually(feed_has(deploy, TJ, after), what="an alert signed with the new key")
    finally:
        await restarted.stop()


async def _rejected_by(entries: Any, node_id: str) -> list[dict[str, Any]]:
    return [e for e in await entries if e["actor_node"] == node_id]
