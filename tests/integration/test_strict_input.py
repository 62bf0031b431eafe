"""The remaining input holes of issue 13, on a deployment with real NATS and Postgres: repeated
JSON keys, invisible control and bidi characters, times far from now, references to alerts the
poster may not see, and the status of a missing Idempotency-Key."""

from __future__ import annotations

import copy
import json
import tempfile
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio

from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.embedded import NatsServer, PostgresServer
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deploy(postgres_server: PostgresServer, runtime_dir: Path) -> AsyncIterator[Deployment]:
    database = postgres_server.create_database(f"test_{uuid.uuid4().hex}")
    url = database.replace("postgresql://", "postgresql+asyncpg://", 1)
    base = Path(tempfile.mkdtemp(prefix="strict-", dir=runtime_dir))
    with NatsServer(base / "nats") as nats:
        async with deployment(url, nats.url, base / "keys") as d:
            yield d


async def post(
    deploy: Deployment, node: str, body: Any, *, raw: bytes | None = None
) -> httpx.Response:
    headers = deploy.terminal(node) | {"Idempotency-Key": str(uuid.uuid4())}
    if raw is not None:
        headers["Content-Type"] = "application/json"
        return await deploy.client(node).post("/v1/alerts", content=raw, headers=headers)
    return await deploy.client(node).post("/v1/alerts", json=body, headers=headers)


def seizure(**case: Any) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_SEIZURE)
    body["case"].update(case)
    return body


async def test_repeated_json_keys_are_refused(deploy: Deployment) -> None:
    text = json.dumps(EXAMPLE_SEIZURE)
    assert text.startswith('{"kind"')
    repeated = '{"tlp": "RED", ' + text[1:]  # the example's own "tlp" comes later
    response = await post(deploy, KG, None, raw=repeated.encode())
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["message"] == "JSON decode error"
    batch = json.dumps({"alerts": []})[:-1] + ', "alerts": []}'
    assert (
        await deploy.client(KG).post(
            "/v1/alerts:batch",
            content=batch.encode(),
            headers=deploy.terminal(KG) | {"Content-Type": "application/json"},
        )
    ).status_code == 422
    for constant in ("NaN", "Infinity"):
        body = text.replace('"quantity": "12.5"', f'"package_count": {constant}')
        assert (await post(deploy, KG, None, raw=body.encode())).status_code == 422


@pytest.mark.parametrize("bad", ["\u202e", "\x00", "\x1b"])
async def test_control_and_bidi_characters_in_free_text_are_refused(
    deploy: Deployment, bad: str
) -> None:
    narrative = {"text": f"seized at km 12{bad}, driver detained", "lang": "ru"}
    response = await post(deploy, KG, seizure(narrative=narrative))
    assert response.status_code == 422, response.text
    assert "control or bidi" in response.json()["detail"]


async def test_observed_at_far_in_the_past_is_refused(deploy: Deployment) -> None:
    response = await post(deploy, KG, seizure(observed_at="0001-01-01T00:00:00Z"))
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "case.observed_at"


async def test_references_only_to_alerts_the_poster_may_see(deploy: Deployment) -> None:
    own = await post(deploy, KG, EXAMPLE_SEIZURE)
    assert own.status_code == 202, own.text
    own_id = own.json()["alert_id"]
    await eventually(feed_has(deploy, TJ, own_id), what="delivery to TJ")

    # KG may supersede its own alert, never an unknown one or another agency's.
    assert (await post(deploy, KG, EXAMPLE_SEIZURE | {"supersedes": own_id})).status_code == 202
    unknown = await post(deploy, KG, EXAMPLE_SEIZURE | {"supersedes": str(uuid.uuid4())})
    assert unknown.status_code == 422
    from_tj = {
        "kind": "seizure",
        "border_pair": "KG-TJ",
        "crossing_point": "TJ-KARAMYK",
        "tlp": "AMBER",
        "case": EXAMPLE_SEIZURE["case"],
    }
    assert (await post(deploy, TJ, from_tj | {"supersedes": own_id})).status_code == 422

    # TJ received it, so TJ may give feedback on it; UZ holds no such alert.
    feedback = {
        "kind": "feedback",
        "border_pair": "KG-TJ",
        "crossing_point": "TJ-KARAMYK",
        "tlp": "AMBER",
        "case": {"alert_id": own_id, "outcome": "seized"},
    }
    accepted = await post(deploy, TJ, feedback)
    assert accepted.status_code == 202, accepted.text
    stranger = feedback | {"border_pair": "TJ-UZ", "crossing_point": "UZ-OYBEK"}
    refused = await post(deploy, UZ, stranger)
    assert refused.status_code == 422, refused.text
    assert "no alert this office holds" in refused.json()["detail"]


async def test_a_missing_idempotency_key_is_a_bad_request(deploy: Deployment) -> None:
    response = await deploy.client(KG).post(
        "/v1/alerts", json=EXAMPLE_SEIZURE, headers=deploy.terminal(KG)
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
