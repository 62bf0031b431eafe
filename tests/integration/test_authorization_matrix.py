"""Who may do what, as a full matrix: every role x every endpoint x own / other agency / other
border pair (OWASP API Top 10 2023: API1 object level, API3 property level, API5 function level).

One deployment serves the whole module; each row is one request and its expected status.
"""

from __future__ import annotations

import copy
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.embedded import NatsServer, PostgresServer
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class World:
    deploy: Deployment
    alert_id: str  # a KG-TJ seizure from the KG terminal, delivered to TJ


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(postgres_server: PostgresServer, runtime_dir: Path) -> AsyncIterator[World]:
    database = postgres_server.create_database(f"test_{uuid.uuid4().hex}")
    url = database.replace("postgresql://", "postgresql+asyncpg://", 1)
    base = Path(tempfile.mkdtemp(prefix="authz-", dir=runtime_dir))
    with NatsServer(base / "nats") as nats:
        async with deployment(url, nats.url, base / "keys") as deploy:
            response = await deploy.client(KG).post(
                "/v1/alerts",
                json=EXAMPLE_SEIZURE,
                headers=deploy.terminal(KG) | {"Idempotency-Key": "authz-seed-0001"},
            )
            assert response.status_code == 202, response.text
            alert_id = response.json()["alert_id"]
            await eventually(feed_has(deploy, TJ, alert_id), what="delivery to TJ")
            yield World(deploy=deploy, alert_id=alert_id)


def credential(world: World, who: str) -> dict[str, str]:
    """``terminal@NODE``, ``analyst@NODE``, ``auditor``, ``admin`` or ``none``."""
    seed = world.deploy.seed
    if who == "none":
        return {}
    if who == "auditor":
        token = seed.auditor_token
    elif who == "admin":
        token = seed.admin_token
    else:
        role, node = who.split("@")
        token = (seed.terminal_tokens if role == "terminal" else seed.analyst_tokens)[node]
    return {"Authorization": f"Bearer {token}"}


def seizure_on(pair: str, crossing: str) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_SEIZURE)
    body.update(border_pair=pair, crossing_point=crossing)
    if pair == "TJ-UZ":
        body.pop("nominal")
        body["tlp"] = "GREEN"
    return body


KG_TJ = seizure_on("KG-TJ", "KG-KARAMYK")
TJ_UZ_FROM_TJ = seizure_on("TJ-UZ", "TJ-FOTEHOBOD")

KEEP = {"until": "2099-01-01", "reason": "investigation open"}

# (node the request goes to, method, path, body, who, expected status)
MATRIX: list[tuple[str, str, str, Any, str, int]] = [
    # submit: only a terminal of this node, only for the node's pairs
    (KG, "POST", "/v1/alerts", KG_TJ, "terminal@" + KG, 202),
    (KG, "POST", "/v1/alerts", TJ_UZ_FROM_TJ, "terminal@" + KG, 403),  # other border pair
    (TJ, "POST", "/v1/alerts", KG_TJ, "terminal@" + KG, 401),  # another node's terminal
    (TJ2, "POST", "/v1/alerts", TJ_UZ_FROM_TJ, "terminal@" + TJ2, 202),
    (KG, "POST", "/v1/alerts", KG_TJ, "analyst@" + KG, 403),
    (KG, "POST", "/v1/alerts", KG_TJ, "auditor", 403),
    (KG, "POST", "/v1/alerts", KG_TJ, "admin", 403),
    (KG, "POST", "/v1/alerts", KG_TJ, "none", 401),
    # batch: the same rules, per item or for the whole call
    (KG, "POST", "/v1/alerts:batch", "batch", "analyst@" + KG, 403),
    (KG, "POST", "/v1/alerts:batch", "batch", "auditor", 403),
    (KG, "POST", "/v1/alerts:batch", "batch", "none", 401),
    (KG, "POST", "/v1/alerts:batch", "batch", "terminal@" + KG, 200),
    # read one alert: origin agency's terminal on its node, a recipient agency's analyst
    (KG, "GET", "/v1/alerts/{id}", None, "terminal@" + KG, 200),
    (TJ, "GET", "/v1/alerts/{id}", None, "analyst@" + TJ, 200),
    (KG, "GET", "/v1/alerts/{id}", None, "analyst@" + KG, 200),  # origin agency is a recipient
    (UZ, "GET", "/v1/alerts/{id}", None, "analyst@" + UZ, 404),  # not a recipient
    (TJ, "GET", "/v1/alerts/{id}", None, "terminal@" + TJ, 404),  # terminal of another agency
    (TJ, "GET", "/v1/alerts/{id}", None, "analyst@" + KG, 401),  # KG analyst on the TJ node
    (TJ, "GET", "/v1/alerts/{id}", None, "terminal@" + KG, 401),  # nodes admit their own only
    (KG, "GET", "/v1/alerts/{id}", None, "auditor", 404),  # auditors never see content
    (KG, "GET", "/v1/alerts/{id}", None, "admin", 404),
    (KG, "GET", "/v1/alerts/{id}", None, "none", 401),
    # feed: only analysts of the node's agency
    (TJ, "GET", "/v1/feed", None, "analyst@" + TJ, 200),
    (TJ2, "GET", "/v1/feed", None, "analyst@" + TJ, 200),  # same agency, other node
    (TJ, "GET", "/v1/feed", None, "analyst@" + KG, 401),
    (TJ, "GET", "/v1/feed", None, "analyst@" + UZ, 401),
    (TJ, "GET", "/v1/feed", None, "terminal@" + TJ, 403),
    (TJ, "GET", "/v1/feed", None, "auditor", 403),
    (TJ, "GET", "/v1/feed", None, "admin", 403),
    (TJ, "GET", "/v1/feed", None, "none", 401),
    (TJ, "GET", "/v1/feed/stream", None, "analyst@" + UZ, 401),
    (TJ, "GET", "/v1/feed/stream", None, "terminal@" + TJ, 403),
    (TJ, "GET", "/v1/feed/stream", None, "auditor", 403),
    (TJ, "GET", "/v1/feed/stream", None, "none", 401),
    # receipts: a recipient agency's analyst only
    (TJ, "POST", "/v1/alerts/{id}/receipts", {"type": "acknowledged"}, "analyst@" + TJ, 202),
    (UZ, "POST", "/v1/alerts/{id}/receipts", {"type": "acknowledged"}, "analyst@" + UZ, 404),
    (TJ, "POST", "/v1/alerts/{id}/receipts", {"type": "acknowledged"}, "analyst@" + KG, 401),
    (TJ, "POST", "/v1/alerts/{id}/receipts", {"type": "acknowledged"}, "terminal@" + TJ, 403),
    (TJ, "POST", "/v1/alerts/{id}/receipts", {"type": "acknowledged"}, "auditor", 403),
    (TJ, "POST", "/v1/alerts/{id}/receipts", {"type": "acknowledged"}, "none", 401),
    # directory: any principal
    (UZ, "GET", "/v1/directory", None, "analyst@" + UZ, 200),
    (UZ, "GET", "/v1/directory", None, "terminal@" + UZ, 200),
    (UZ, "GET", "/v1/directory", None, "auditor", 200),
    (UZ, "GET", "/v1/directory", None, "terminal@" + KG, 401),  # another node's principal
    (UZ, "GET", "/v1/directory", None, "analyst@" + TJ, 401),
    (UZ, "GET", "/v1/directory", None, "none", 401),
    # ledger: auditors only
    (KG, "GET", "/v1/ledger/entries", None, "auditor", 200),
    (KG, "GET", "/v1/ledger/entries", None, "analyst@" + KG, 403),
    (KG, "GET", "/v1/ledger/entries", None, "terminal@" + KG, 403),
    (KG, "GET", "/v1/ledger/entries", None, "admin", 403),
    (KG, "GET", "/v1/ledger/entries", None, "none", 401),
    # probes: no credential needed
    (KG, "GET", "/livez", None, "none", 200),
    (KG, "GET", "/readyz", None, "none", 200),
    # retention reviews: the origin agency's analyst on its node; the report: auditors only
    (KG, "GET", "/v1/retention/reviews", None, "analyst@" + KG, 200),
    (TJ, "GET", "/v1/retention/reviews", None, "analyst@" + TJ, 200),  # only its own alerts
    (KG, "GET", "/v1/retention/reviews", None, "terminal@" + KG, 403),
    (KG, "GET", "/v1/retention/reviews", None, "auditor", 403),
    (KG, "GET", "/v1/retention/reviews", None, "none", 401),
    (TJ, "POST", "/v1/retention/reviews/{id}/keep", KEEP, "analyst@" + TJ, 404),  # a recipient
    (KG, "POST", "/v1/retention/reviews/{id}/keep", KEEP, "terminal@" + KG, 403),
    (KG, "POST", "/v1/retention/reviews/{id}/keep", KEEP, "auditor", 403),
    (KG, "POST", "/v1/retention/reviews/{id}/keep", KEEP, "none", 401),
    (TJ, "POST", "/v1/retention/reviews/{id}/expire", None, "analyst@" + TJ, 404),
    (KG, "POST", "/v1/retention/reviews/{id}/expire", None, "analyst@" + KG, 200),
    (KG, "GET", "/v1/ledger/retention", None, "auditor", 200),
    (KG, "GET", "/v1/ledger/retention", None, "analyst@" + KG, 403),
    (KG, "GET", "/v1/ledger/retention", None, "none", 401),
]


@pytest.mark.parametrize(
    ("node", "method", "path", "body", "who", "expected"),
    MATRIX,
    ids=[f"{m} {p} on {n} as {w}" for n, m, p, _, w, _ in MATRIX],
)
async def test_matrix(
    world: World, node: str, method: str, path: str, body: Any, who: str, expected: int
) -> None:
    headers = credential(world, who)
    if body == "batch":
        body = {"alerts": [{"idempotency_key": str(uuid.uuid4()), "alert": KG_TJ}]}
    if method == "POST" and path == "/v1/alerts":
        headers["Idempotency-Key"] = str(uuid.uuid4())
    response = await world.deploy.client(node).request(
        method, path.replace("{id}", world.alert_id), json=body, headers=headers
    )
    assert response.status_code == expected, response.text
    if expected >= 400:
        assert response.headers["content-type"] == "application/problem+json"
        assert world.alert_id not in response.text or expected == 404
    if who == "auditor" and response.status_code == 200 and "ledger" in path:
        assert "Example Driver" not in response.text  # metadata, never plaintext


async def test_origin_fields_in_the_body_are_refused(world: World) -> None:
    forged = copy.deepcopy(KG_TJ) | {"origin_node": UZ, "origin_agency": "uz-customs-committee"}
    response = await world.deploy.client(KG).post(
        "/v1/alerts",
        json=forged,
        headers=credential(world, "terminal@" + KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"origin_node", "origin_agency"}


async def test_idempotency_keys_are_scoped_to_the_principal(world: World) -> None:
    key = {"Idempotency-Key": "shared-key-0001"}
    first = await world.deploy.client(KG).post(
        "/v1/alerts", json=KG_TJ, headers=credential(world, "terminal@" + KG) | key
    )
    other = await world.deploy.client(TJ2).post(
        "/v1/alerts", json=TJ_UZ_FROM_TJ, headers=credential(world, "terminal@" + TJ2) | key
    )
    assert first.status_code == other.status_code == 202
    assert first.json()["alert_id"] != other.json()["alert_id"]
