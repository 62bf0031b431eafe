"""Directory changes and auditors' queries in the ledger, on a running deployment.

Each key registered or revoked and each agreement version is one entry, however often the writer
restarts; each auditor request to /v1/ledger/... is one ``ledger_queried`` entry, and none is
answered unless its record reached JetStream. The ledger is read from the store here, so that
reading it adds no entries of its own.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from blo_exchange.bootstrap.app import create_app
from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.receipt import sign_receipt
from blo_exchange.demo.directory import DEMO_AGREEMENTS
from blo_exchange.domain.ids import utc_now
from blo_exchange.domain.subjects import LEDGER_QUERIES_SUBJECT
from blo_exchange.errors import BusError
from blo_exchange.ledger.audit import LedgerQueryRecorder
from blo_exchange.ledger.entries import parse_leaf_input
from blo_exchange.ledger.ports import EntryFilter
from blo_exchange.ledger.reads import AuditorReads
from blo_exchange.services.auth import Authenticator
from blo_exchange.services.registry import Services
from tests.integration.pipeline import Deployment, deployment, eventually

KG, UZ = "blo-karamyk-kg", "blo-oybek-uz"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def stored(deploy: Deployment, **filters: Any) -> list[dict[str, Any]]:
    rows = await deploy.writer_host.ledger.entries(EntryFilter(**filters), after=-1, limit=10_000)
    return [parse_leaf_input(leaf) | {"index": index} for index, leaf in rows]


def stored_where(
    deploy: Deployment, match: Callable[[dict[str, Any]], bool], **filters: Any
) -> Callable[[], Awaitable[list[dict[str, Any]]]]:
    async def probe() -> list[dict[str, Any]]:
        return [e for e in await stored(deploy, **filters) if match(e)]

    return probe


async def event_counts(deploy: Deployment) -> Counter[str]:
    rows = await deploy.writer_host.ledger.leaves(await deploy.writer_host.ledger.size())
    counts: Counter[str] = Counter()
    for _, leaf, _ in rows:
        f = parse_leaf_input(leaf)
        if f["type"] in {"key_registered", "key_revoked"}:
            counts[f"{f['type']}:{f['detail']['key_id']}"] += 1
        elif f["type"] == "agreement_changed":
            counts[f"agreement_changed:{f['detail']['id']}:{f['detail']['title']}"] += 1
    return counts


async def test_directory_changes_are_ledgered_exactly_once(deploy: Deployment) -> None:
    directory = deploy.writer_host.directory
    snapshot = await directory.snapshot()
    seeded = {k["key_id"] for k in snapshot["keys"]}
    await eventually(
        stored_where(deploy, lambda e: True, type="key_registered"),
        what="the seeded keys in the ledger",
    )

    async def all_seeded() -> bool:
        have = {e["detail"]["key_id"] for e in await stored(deploy, type="key_registered")}
        return seeded <= have

    await eventually(all_seeded, what="every seeded key registered in the ledger")

    # An admin registers a node key, revokes it, and amends an agreement.
    new_key = SigningKey.generate().verify_key()
    assert await directory.add_key(
        key_id=new_key.key_id, owner_kind="node", owner_id=UZ, alg="Ed25519", public=new_key.public
    )
    revoked_at = utc_now() - timedelta(seconds=1)
    await directory.revoke_key(new_key.key_id, revoked_at)
    agreement = DEMO_AGREEMENTS[1]
    amended = agreement.model_copy(update={"title": agreement.title + " (amended)"})
    await directory.put_agreement(amended)

    registered = await eventually(
        stored_where(
            deploy, lambda e: e["detail"]["key_id"] == new_key.key_id, type="key_registered"
        ),
        what="key_registered",
    )
    revoked = await eventually(
        stored_where(deploy, lambda e: e["detail"]["key_id"] == new_key.key_id, type="key_revoked"),
        what="key_revoked",
    )
    changed = await eventually(
        stored_where(
            deploy, lambda e: e["detail"]["title"] == amended.title, type="agreement_changed"
        ),
        what="agreement_changed",
    )
    assert registered[0]["actor_node"] == UZ
    assert registered[0]["actor_agency"] == "uz-customs-committee"
    assert registered[0]["detail"]["owner_kind"] == "node"
    assert registered[0]["detail"]["alg"] == "Ed25519"
    assert len(registered[0]["detail"]["public_sha256"]) == 64
    assert revoked[0]["detail"]["revoked_at"] == revoked[0]["occurred_at"]
    assert changed[0]["agreement_ids"] == [agreement.id]
    assert changed[0]["recipients"] == sorted(agreement.parties)
    assert changed[0]["detail"]["id"] == agreement.id

    # The directory shows the revocation too.
    listed = await deploy.client(UZ).get("/v1/directory", headers=deploy.analyst(UZ))
    (row,) = [k for k in listed.json()["keys"] if k["key_id"] == new_key.key_id]
    assert row["revoked_at"] == revoked[0]["detail"]["revoked_at"]

    # Restart the writer twice, let each scan the directory, and run a scan by hand as well.
    for _ in range(2):
        await deploy.stop_ledger_writer()
        writer = deploy.start_ledger_writer()
        assert await writer.record_directory() == []
    await asyncio.sleep(1.5)  # at least one more tick of the last writer
    counts = await event_counts(deploy)
    assert counts[f"key_registered:{new_key.key_id}"] == 1
    assert counts[f"key_revoked:{new_key.key_id}"] == 1
    assert counts[f"agreement_changed:{agreement.id}:{amended.title}"] == 1
    assert counts[f"agreement_changed:{agreement.id}:{agreement.title}"] == 1
    assert all(n == 1 for n in counts.values()), counts


async def test_auditor_queries_are_ledgered(deploy: Deployment) -> None:
    auditor = await deploy.writer_host.auth.authenticate(
        deploy.seed.auditor_token, certificate=None
    )
    refused = await deploy.client(KG).get("/v1/ledger/checkpoint", headers=deploy.analyst(KG))
    assert refused.status_code == 403
    response = await deploy.client(UZ).get(
        "/v1/ledger/entries",
        params={"type": "alert_shared", "limit": "5"},
        headers=deploy.auditor,
    )
    assert response.status_code == 200, response.text

    (entry,) = await eventually(
        stored_where(deploy, lambda e: e["actor_node"] == UZ, type="ledger_queried"),
        what="the query in the ledger",
    )
    assert entry["actor_agency"] == "uz-customs-committee"
    assert entry["detail"]["principal"] == auditor.id
    assert entry["detail"]["path"] == "/v1/ledger/entries"
    assert entry["detail"]["filters"] == {"limit": ["5"], "type": ["alert_shared"]}
    assert entry["detail"]["receipt_id"]
    # The analyst's refused request is not an auditor's query.
    assert [e for e in await stored(deploy, type="ledger_queried") if e["actor_node"] == KG] == []

    # Auditors see their own reads through the API as well, once a checkpoint covers them (the
    # API serves only entries it verified against one; the writer cuts it after the commit).
    async def seen_through_api() -> bool:
        seen = await deploy.client(KG).get(
            "/v1/ledger/entries", params={"type": "ledger_queried"}, headers=deploy.auditor
        )
        return entry["detail"]["receipt_id"] in {
            e["detail"]["receipt_id"] for e in seen.json()["entries"]
        }

    await eventually(seen_through_api, what="the query through the API")

    # The checkpoint records live on the same stream; the writer's query consumer skips them.
    info = await deploy.writer_host.bus.js.consumer_info("BLO_LEDGER", "ledger-writer-queries")
    config = info.config
    assert (config.filter_subjects or [config.filter_subject]) == [LEDGER_QUERIES_SUBJECT]
    rejected = await stored(deploy, type="alert_rejected")
    assert [r for r in rejected if "ledger" in r["detail"]["subject"]] == []


async def test_a_padded_query_is_recorded_with_its_real_filter(deploy: Deployment) -> None:
    alert_id = "019ac9a1-5b00-7c3e-8a4f-2d1e0b9c7a61"
    query = "pad=" + "x" * 600 + f"&alert_id={alert_id}"
    response = await deploy.client(UZ).get("/v1/ledger/entries?" + query, headers=deploy.auditor)
    assert response.status_code == 200, response.text
    (entry,) = await eventually(
        stored_where(deploy, lambda e: "pad" in e["detail"]["filters"], type="ledger_queried"),
        what="the padded query in the ledger",
    )
    assert entry["detail"]["filters"] == {"alert_id": [alert_id], "pad": ["x" * 600]}

    # Longer than can be recorded in full: refused (422), and the refusal is recorded.
    huge = f"alert_id={alert_id}&pad=" + "y" * 2500
    refused = await deploy.client(UZ).get("/v1/ledger/entries?" + huge, headers=deploy.auditor)
    assert refused.status_code == 422, refused.text
    assert refused.json()["type"].endswith("/query-too-long")
    assert "entries" not in refused.json()
    (record,) = await eventually(
        stored_where(deploy, lambda e: "refused" in e["detail"], type="ledger_queried"),
        what="the refused query in the ledger",
    )
    assert record["detail"]["refused"]["query_chars"] == len(huge)
    assert record["detail"]["filters"] == {}


async def test_a_forged_query_record_is_rejected(deploy: Deployment) -> None:
    body = {
        "receipt_id": "forged-1",
        "type": "ledger_queried",
        "node": KG,
        "agency": "kg-border-service",
        "principal": "auditor-nobody",
        "path": "/v1/ledger/entries",
        "filters": {},
        "occurred_at": "2026-11-28T06:40:00Z",
    }
    await deploy.writer_host.bus.publish(
        LEDGER_QUERIES_SUBJECT, sign_receipt(body, SigningKey.generate()), msg_id="forged-1"
    )
    (rejected,) = await eventually(
        stored_where(
            deploy,
            lambda e: e["detail"]["subject"] == LEDGER_QUERIES_SUBJECT,
            type="alert_rejected",
        ),
        what="the forged record rejected",
    )
    assert rejected["detail"]["reason"] == "unknown_key"
    assert await stored(deploy, type="ledger_queried") == []


class _RefusingBus:
    """A NATS connection that never acknowledges."""

    async def publish(self, subject: str, payload: bytes, *, msg_id: str) -> Any:
        raise BusError(f"JetStream did not acknowledge {subject}")


async def test_an_unrecorded_query_is_not_answered(deploy: Deployment) -> None:
    runtime = deploy.runtimes[KG]
    cut_off = Services()
    cut_off.add(Authenticator, runtime.auth)
    cut_off.add(
        AuditorReads,
        AuditorReads(
            store=runtime.ledger,
            directory=runtime.directory,
            origin=runtime.settings.ledger_origin,
            recorder=LedgerQueryRecorder(
                node=runtime.node,
                signer=runtime.keys.signing,
                publisher=_RefusingBus(),
                clock=utc_now,
            ),
            clock=utc_now,
        ),
    )
    app = create_app(runtime.settings, services=cut_off)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://kg.test"
    ) as client:
        for path in ("/v1/ledger/entries", "/v1/ledger/sharing", "/v1/ledger/checkpoint"):
            response = await client.get(path, headers=deploy.auditor)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert "entries" not in response.json()
        # Non-auditors are refused as before; nothing needed recording.
        assert (await client.get("/v1/ledger/entries")).status_code == 401
