"""/readyz on real servers: answered at once from state kept in the background, 503 with NATS
down, and 503 while the delivery consumer has a backlog to drain."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.embedded import NatsServer
from tests.integration.pipeline import Deployment, deployment, eventually

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def test_readyz_answers_at_once_with_nats_down(
    deploy: Deployment, nats_server: NatsServer
) -> None:
    client = deploy.client(KG)
    assert (await client.get("/readyz")).status_code == 200
    nats_server.kill()

    async def says_down() -> bool:
        response = await client.get("/readyz")
        return response.status_code == 503

    await eventually(says_down, timeout=5.0, what="/readyz to see NATS down")
    took = []
    for _ in range(20):
        started = time.perf_counter()
        response = await client.get("/readyz")
        took.append(time.perf_counter() - started)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    checks = response.json()["checks"]
    assert checks["nats"] is False
    assert checks["stream"] is False
    assert checks["database"] is True
    assert max(took) < 0.1, took  # the check itself waits up to a second per question
    nats_server.start()
    await eventually(lambda: _ready(client), timeout=10.0, what="/readyz to see NATS back")


async def _ready(client: httpx.AsyncClient) -> bool:
    return (await client.get("/readyz")).status_code == 200


async def test_readyz_is_503_while_delivery_has_a_backlog(deploy: Deployment) -> None:
    tj = deploy.runtimes[TJ]
    tj.health.max_backlog = 0
    tj.consumer.stop()  # TJ stops taking alerts off the stream: they pile up
    await asyncio.sleep(1.5)  # the batch in hand (if any) is finished
    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text

    async def behind() -> dict[str, object] | None:
        ready = await deploy.client(TJ).get("/readyz")
        body: dict[str, object] = ready.json()
        return body if ready.status_code == 503 else None

    body = await eventually(behind, timeout=5.0, what="TJ's /readyz to see its backlog")
    assert body["checks"] == {"nats": True, "stream": True, "database": True, "delivery": False}
    assert body["delivery_backlog"] == 1
    assert (await deploy.client(KG).get("/readyz")).status_code == 200
