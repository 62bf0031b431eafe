"""The TAXII 2.1 server against the real taxii2-client, on nodes served over real HTTP.

Every object a client receives is checked by stix2-validator (no error; only the UUIDv5 warning
{103}), each page parses with stix2, and our JSON Schemas hold. Refusals are problem+json.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import socket
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
import requests
import stix2
import uvicorn
from taxii2client.v21 import Server, as_pages
from typer.testing import CliRunner

from blo_exchange.api.routes_taxii import TAXII_READS
from blo_exchange.bootstrap.app import create_app
from blo_exchange.cli.main import app as cli
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.embedded import NatsServer, PostgresServer
from blo_exchange.interop.stix import SEIZURE_TYPE, report_id
from blo_exchange.interop.taxii import TAXII_MEDIA_TYPE, collection_id
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has
from tests.unit.interop.stix_check import assert_valid_stix

KG, TJ, TJ2 = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj"

pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class World:
    deploy: Deployment
    urls: dict[str, str]
    apps: dict[str, Any]
    before: datetime
    seizure: str  # KG-TJ, from KG, with a nominal block
    risk: str  # KG-TJ, from KG
    feedback: str  # KG-TJ, from TJ: seized, about the seizure
    tj_uz: str  # TJ-UZ, from TJ Fotehobod: addressed to TJ (on that node) and UZ, never to KG

    def analyst(self, node: str) -> str:
        return self.deploy.seed.analyst_tokens[node]


async def _post(deploy: Deployment, node: str, body: dict[str, Any], key: str) -> str:
    response = await deploy.client(node).post(
        "/v1/alerts", json=body, headers=deploy.terminal(node) | {"Idempotency-Key": key}
    )
    assert response.status_code == 202, response.text
    alert_id: str = response.json()["alert_id"]
    return alert_id


async def _serve(deploy: Deployment, node: str, stack: list[Any], apps: dict[str, Any]) -> str:
    runtime = deploy.runtimes[node]
    app = apps[node] = create_app(runtime.settings, services=runtime.services)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    stack.append((server, task, sock))

    async def started() -> bool:
        return bool(server.started)

    await eventually(started, what=f"HTTP server of {node}")
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def world(postgres_server: PostgresServer, runtime_dir: Path) -> AsyncIterator[World]:
    database = postgres_server.create_database(f"test_{uuid.uuid4().hex}")
    url = database.replace("postgresql://", "postgresql+asyncpg://", 1)
    base = Path(tempfile.mkdtemp(prefix="taxii-", dir=runtime_dir))
    servers: list[Any] = []
    with NatsServer(base / "nats") as nats:
        async with deployment(url, nats.url, base / "keys") as deploy:
            before = datetime.now(UTC) - timedelta(seconds=1)
            seizure = await _post(deploy, KG, EXAMPLE_SEIZURE, "taxii-0001")
            risk = await _post(deploy, KG, EXAMPLE_RISK, "taxii-0002")
            # Feedback may name only an alert TJ holds: wait for the seizure to get there.
            await eventually(feed_has(deploy, TJ, seizure), what="the seizure at TJ")
            feedback = await _post(
                deploy,
                TJ,
                {
                    "kind": "feedback",
                    "border_pair": "KG-TJ",
                    "crossing_point": "TJ-KARAMYK",
                    "tlp": "AMBER",
                    "case": {"alert_id": seizure, "outcome": "seized"},
                },
                "taxii-0003",
            )
            tj_uz = copy.deepcopy(EXAMPLE_SEIZURE)
            tj_uz.update(border_pair="TJ-UZ", crossing_point="TJ-FOTEHOBOD", tlp="GREEN")
            tj_uz.pop("nominal")
            tj_uz_id = await _post(deploy, TJ2, tj_uz, "taxii-0004")
            for node, alert in [(TJ, seizure), (TJ, risk), (KG, feedback), (TJ2, tj_uz_id)]:
                await eventually(feed_has(deploy, node, alert), what=f"{alert} at {node}")
            try:
                apps: dict[str, Any] = {}
                urls = {node: await _serve(deploy, node, servers, apps) for node in (KG, TJ)}
                yield World(deploy, urls, apps, before, seizure, risk, feedback, tj_uz_id)
            finally:
                for server, task, sock in servers:
                    server.should_exit = True
                    await task
                    sock.close()


class _Bearer(requests.auth.AuthBase):
    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self.token}"
        return r


def _poll(
    url: str, token: str, *, basic: bool, pair: str | None, node: str, **kwargs: Any
) -> list[dict[str, Any]]:
    """discovery → API root → collections → every page of get_objects, as a TAXII client does.

    Each page is a bundle for stix2 and for the validator; returns every object, in order.
    """
    auth: dict[str, Any] = (
        {"user": "analyst", "password": token} if basic else {"auth": _Bearer(token)}
    )
    server = Server(f"{url}/taxii2/", **auth)
    (root,) = server.api_roots
    wanted = collection_id(node, pair)
    (found,) = [c for c in root.collections if c.id == wanted]
    assert found.can_read
    assert not found.can_write
    objects: list[dict[str, Any]] = []
    for envelope in as_pages(found.get_objects, per_request=kwargs.pop("per_request"), **kwargs):
        page = envelope.get("objects", [])
        stix2.parse({"type": "bundle", "id": f"bundle--{uuid.uuid4()}", "objects": page},
                    allow_custom=True)  # fmt: skip
        objects.extend(page)
    return objects


def _unique(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for obj in objects:
        assert seen.setdefault(obj["id"], obj) == obj  # a repeated object is the same version
    return list(seen.values())


def _alert_ids(objects: list[dict[str, Any]]) -> set[str]:
    """The alert ids the objects name (their blo-exchange external reference)."""
    return {
        obj["external_references"][0]["external_id"]
        for obj in objects
        if obj["type"] in {"report", SEIZURE_TYPE, "sighting", "opinion", "note"}
    }


async def test_a_taxii_client_pulls_the_feed_and_every_object_is_valid_stix(world: World) -> None:
    objects = await asyncio.to_thread(
        _poll,
        world.urls[TJ],
        world.analyst(TJ),
        basic=True,
        pair="KG-TJ",
        node=TJ,
        per_request=7,
        added_after=world.before,
    )
    unique = _unique(objects)
    for obj in objects:
        assert_valid_stix([obj])
    assert_valid_stix(unique)  # and as one bundle: every reference resolves to an object here
    ids = {o["id"] for o in unique}
    assert {report_id(world.seizure), report_id(world.risk)} <= ids
    assert {world.seizure, world.risk} <= _alert_ids(unique)
    assert world.tj_uz not in _alert_ids(unique)  # another pair's collection
    (sighting,) = [o for o in unique if o["type"] == "sighting"]
    assert sighting["sighting_of_ref"] == report_id(world.seizure)
    # KG-TJ's agreement allows personal data: the TJ analyst's feed has it, so TAXII does too.
    assert any(o.get("name") == "Example Driver" for o in unique)


async def test_pages_of_any_size_give_the_same_objects_in_the_same_order(world: World) -> None:
    def poll(size: int) -> list[dict[str, Any]]:
        return _poll(
            world.urls[TJ], world.analyst(TJ), basic=False, pair=None, node=TJ, per_request=size
        )

    small, large = await asyncio.gather(asyncio.to_thread(poll, 3), asyncio.to_thread(poll, 1000))
    assert small == large
    assert {world.seizure, world.risk, world.feedback} <= _alert_ids(large)


async def test_added_after_returns_only_what_was_added_since(world: World) -> None:
    client = world.deploy.client(TJ)
    headers = {"Authorization": f"Bearer {world.analyst(TJ)}", "Accept": TAXII_MEDIA_TYPE}
    base = f"/taxii2/{TJ}/collections/{collection_id(TJ, None)}"
    response = await client.get(f"{base}/manifest/", params={"limit": 1000}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == TAXII_MEDIA_TYPE
    last = response.headers["X-TAXII-Date-Added-Last"]
    first = response.headers["X-TAXII-Date-Added-First"]
    records = response.json()["objects"]
    assert records[0]["date_added"] == first
    assert records[-1]["date_added"] == last
    assert all(r["media_type"] == "application/stix+json;version=2.1" for r in records)

    empty = await client.get(f"{base}/objects/", params={"added_after": last}, headers=headers)
    assert empty.status_code == 200
    assert empty.json() == {"more": False}
    assert "X-TAXII-Date-Added-First" not in empty.headers

    body = copy.deepcopy(EXAMPLE_RISK)
    body["case"]["subject"] = "Later risk"
    later = await _post(world.deploy, KG, body, "taxii-0005")
    await eventually(feed_has(world.deploy, TJ, later), what="the later alert at TJ")
    fresh = await client.get(f"{base}/objects/", params={"added_after": last}, headers=headers)
    reports = [o for o in fresh.json()["objects"] if o["type"] == "report"]
    assert [r["id"] for r in reports] == [report_id(later)]
    assert fresh.headers["X-TAXII-Date-Added-First"] > last


async def test_an_alert_not_addressed_to_the_agency_never_appears(world: World) -> None:
    objects = await asyncio.to_thread(
        _poll, world.urls[KG], world.analyst(KG), basic=True, pair=None, node=KG, per_request=50
    )
    ids = {o["id"] for o in objects}
    assert report_id(world.seizure) in ids  # KG's own alert is in KG's feed
    assert report_id(world.tj_uz) not in ids
    assert world.tj_uz not in repr(objects)


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"analyst:{token}".encode()).decode()


REFUSALS: list[tuple[str, Callable[[World], dict[str, str]], int]] = [
    ("no credentials", lambda w: {}, 401),
    ("a garbage token", lambda w: {"Authorization": "Bearer nope"}, 401),
    ("a garbage Basic header", lambda w: {"Authorization": "Basic %%%"}, 401),
    ("Basic with a wrong password", lambda w: {"Authorization": _basic("blo_wrong")}, 401),
    ("the terminal of the node", lambda w: w.deploy.terminal(TJ), 403),
    # A node admits only its own agency's principals: another agency's token is no credential here.
    ("another agency's analyst", lambda w: w.deploy.analyst(KG), 401),
    ("another agency's analyst, Basic", lambda w: {"Authorization": _basic(w.analyst(KG))}, 401),
    ("the auditor", lambda w: w.deploy.auditor, 403),
]


@pytest.mark.parametrize(("who", "credentials", "status"), REFUSALS, ids=[r[0] for r in REFUSALS])
@pytest.mark.parametrize("resource", ["", "collections/", "collections/{c}/objects/"])
async def test_refusals_are_problem_json(
    world: World,
    who: str,
    credentials: Callable[[World], dict[str, str]],
    status: int,
    resource: str,
) -> None:
    path = "/taxii2/" if not resource else f"/taxii2/{TJ}/{resource}"
    path = path.replace("{c}", collection_id(TJ, None))
    response = await world.deploy.client(TJ).get(path, headers=credentials(world))
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert "objects" not in response.json()


@pytest.mark.parametrize(
    ("path", "params", "accept", "status"),
    [
        ("/taxii2/{node}/collections/{c}/objects/", {}, "text/html", 406),
        ("/taxii2/{node}/collections/{c}/objects/", {"next": "garbage!"}, TAXII_MEDIA_TYPE, 400),
        ("/taxii2/{node}/collections/{c}/objects/", {"limit": "0"}, TAXII_MEDIA_TYPE, 422),
        ("/taxii2/{node}/collections/{c}/objects/", {"added_after": "x"}, TAXII_MEDIA_TYPE, 422),
        ("/taxii2/blo-oybek-uz/collections/", {}, TAXII_MEDIA_TYPE, 404),
        ("/taxii2/{node}/collections/{other}/objects/", {}, TAXII_MEDIA_TYPE, 404),
    ],
)
async def test_bad_requests(
    world: World, path: str, params: dict[str, str], accept: str, status: int
) -> None:
    # The UZ pair's collection id on TJ Karamyk: a collection of another node, not of this one.
    path = path.format(node=TJ, c=collection_id(TJ, "KG-TJ"), other=collection_id(TJ2, "TJ-UZ"))
    headers = {"Authorization": f"Bearer {world.analyst(TJ)}", "Accept": accept}
    response = await world.deploy.client(TJ).get(path, params=params, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"


async def test_every_read_is_logged_and_counted(
    world: World, caplog: pytest.LogCaptureFixture
) -> None:
    headers = {"Authorization": f"Bearer {world.analyst(TJ)}"}
    counts = getattr(world.apps[TJ].state, TAXII_READS, {})
    before = sum(n for (_, res), n in counts.items() if res == "collections")
    with caplog.at_level("INFO", logger="blo_exchange.taxii"):
        async with httpx.AsyncClient(base_url=world.urls[TJ]) as client:
            response = await client.get(f"/taxii2/{TJ}/collections/", headers=headers)
    assert response.status_code == 200
    (record,) = [r for r in caplog.records if r.name == "blo_exchange.taxii"]
    assert record.__dict__["resource"] == "collections"
    assert record.__dict__["agency"] == "tj-drug-control-agency"
    assert record.__dict__["principal"]
    counts = getattr(world.apps[TJ].state, TAXII_READS)
    assert sum(n for (_, res), n in counts.items() if res == "collections") == before + 1


async def test_the_offline_export_gives_the_objects_taxii_serves(world: World) -> None:
    runner = CliRunner()
    url, token = world.urls[TJ], world.analyst(TJ)

    def export(*args: str) -> dict[str, Any]:
        env = {"BLO_URL": url, "BLO_TOKEN": token}
        result = runner.invoke(cli, ["stix", "export", *args], env=env)
        assert result.exit_code == 0, result.output
        exported: dict[str, Any] = json.loads(result.output)
        return exported

    one = await asyncio.to_thread(export, "--alert", world.seizure)
    assert_valid_stix(one["objects"])
    served = await asyncio.to_thread(
        _poll, url, token, basic=False, pair=None, node=TJ, per_request=1000
    )
    served_ids = {o["id"] for o in served}
    exported = {o["id"] for o in one["objects"] if o["type"] != "marking-definition"}
    assert exported <= served_ids  # the same ids: the same mapping of the same feed item
    (report,) = [o for o in one["objects"] if o["type"] == "report"]
    assert report == next(o for o in served if o["id"] == report["id"])

    since = (world.before - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ranged = await asyncio.to_thread(export, "--since", since)
    assert_valid_stix(ranged["objects"])
    assert {world.seizure, world.risk, world.feedback} <= _alert_ids(ranged["objects"])

    refused = await asyncio.to_thread(
        runner.invoke,
        cli,
        ["stix", "export", "--alert", world.seizure],
        env={"BLO_URL": url, "BLO_TOKEN": world.deploy.seed.terminal_tokens[KG]},
    )
    assert refused.exit_code == 1  # a terminal of another node may not read it here
