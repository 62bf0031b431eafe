"""Re-sharing an alert beyond its recipients, on real servers (docs/contracts/receipts.md).

The demo deployment plus a fifth node, ``blo-karamyk-customs-kg`` of a new agency ``kg-customs``
on KG-TJ. The agreement between KG's border service and ``kg-customs`` is signed only after the
alerts were posted (else the customs would be an original recipient), so a re-share is the only
way the customs get them: at once for an unrestricted alert, with the originator's recorded
permission for an H2 one, never when it is denied.
"""

from __future__ import annotations

import asyncio
import copy
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from blo_exchange.bootstrap.app import create_app
from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.config import Settings
from blo_exchange.crypto.keyfiles import create_node_keys
from blo_exchange.crypto.keys import HpkeSuite
from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.directory import Agency, Agreement, Node, Principal, Role
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.marking import Tlp
from blo_exchange.services.auth import hash_token, new_token
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has, ledger_has

KG, TJ, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-oybek-uz"
CUSTOMS, CUSTOMS_AGENCY = "blo-karamyk-customs-kg", "kg-customs"
CUSTOMS_MOU = "mou-kg-customs-2026"
STEPS = ["reshare_requested", "reshare_approved", "reshare_executed"]


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        await add_customs_node(d, database_url, nats_url, tmp_path / "keys")
        yield d


async def add_customs_node(
    deploy: Deployment, database_url: str, nats_url: str, key_root: Path
) -> None:
    """A KG customs agency with a node on KG-TJ and an analyst; no agreement yet."""
    directory = deploy.runtimes[KG].directory
    await directory.add_agency(
        Agency(id=CUSTOMS_AGENCY, country="KG", name="State Customs Service (demo)")
    )
    node = Node(
        id=CUSTOMS,
        agency_id=CUSTOMS_AGENCY,
        border_pairs=("KG-TJ",),
        crossing_points=("KG-KARAMYK",),
    )
    await directory.add_node(node)
    keys = create_node_keys(key_root / CUSTOMS, suite=HpkeSuite.MLKEM768_X25519)
    agency_key = next(iter(keys.kem.values())).public_key()
    await directory.add_key(
        key_id=agency_key.key_id,
        owner_kind="agency",
        owner_id=CUSTOMS_AGENCY,
        alg=agency_key.suite.value,
        public=agency_key.public,
    )
    verify_key = keys.signing.verify_key()
    await directory.add_key(
        key_id=verify_key.key_id,
        owner_kind="node",
        owner_id=CUSTOMS,
        alg="Ed25519",
        public=verify_key.public,
    )
    token = new_token()
    await directory.add_principal(
        Principal(
            id="analyst-kg-customs",
            role=Role.ANALYST,
            agency_id=CUSTOMS_AGENCY,
            label="kg-customs analyst",
            created_at=datetime.now(UTC),
        ),
        hash_token(token),
    )
    deploy.seed.analyst_tokens[CUSTOMS] = token
    settings = Settings(
        node_id=CUSTOMS,
        database_url=database_url,  # type: ignore[arg-type]
        nats_url=nats_url,  # type: ignore[arg-type]
        key_dir=key_root / CUSTOMS,
        run_ledger_writer=False,
    )
    runtime = await NodeRuntime.start(settings)
    deploy.runtimes[CUSTOMS] = runtime
    deploy.clients[CUSTOMS] = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(settings, services=runtime.services)),
        base_url=f"http://{CUSTOMS}.test",
    )
    deploy.invalidate_directories()


async def sign_customs_agreement(deploy: Deployment) -> None:
    await deploy.runtimes[KG].directory.put_agreement(
        Agreement(
            id=CUSTOMS_MOU,
            title="KG border service and customs: exchange at Karamyk",
            parties=("kg-border-service", CUSTOMS_AGENCY),
            border_pairs=("KG-TJ",),
            kinds=(AlertKind.SEIZURE, AlertKind.RISK),
            max_tlp=Tlp.AMBER_STRICT,
            nominal=False,
            valid_from=datetime(2026, 1, 1, tzinfo=UTC),
            valid_until=datetime(2031, 1, 1, tzinfo=UTC),
            memorandum_ref="KG/2026/CUSTOMS-01",
        )
    )
    deploy.invalidate_directories()


async def post_alert(deploy: Deployment, body: dict[str, Any]) -> str:
    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=body,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    alert_id: str = response.json()["alert_id"]
    await eventually(feed_has(deploy, TJ, alert_id), what="the alert in the TJ feed")
    return alert_id


def h2() -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_SEIZURE)
    body["handling"] = {"scheme": "europol", "code": "H2"}
    return body


async def ask(
    deploy: Deployment,
    alert_id: str,
    *,
    node: str = TJ,
    target: str = CUSTOMS_AGENCY,
    reason: str = "the customs post at Karamyk checks the same lorries",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return await deploy.client(node).post(
        f"/v1/alerts/{alert_id}/reshare-requests",
        json={"target_agency": target, "reason": reason},
        headers=deploy.analyst(node) if headers is None else headers,
    )


def request_in(
    deploy: Deployment, node: str, alert_id: str, request_id: str, status: str
) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        response = await deploy.client(node).get(
            f"/v1/alerts/{alert_id}/reshare-requests", headers=deploy.analyst(node)
        )
        assert response.status_code == 200, response.text
        for request in response.json()["requests"]:
            if request["request_id"] == request_id and request["status"] == status:
                return request
        return None

    return probe


def steps_in_ledger(
    deploy: Deployment, alert_id: str, wanted: list[str]
) -> Callable[[], Awaitable[Any]]:
    async def probe() -> Any:
        entries = await ledger_has(deploy, KG, alert_id=alert_id)()
        steps = [e for e in entries if e["type"].startswith("reshare_")]
        return steps if [e["type"] for e in steps] == wanted else None

    return probe


async def decide(
    deploy: Deployment, node: str, alert_id: str, request_id: str, verb: str, headers: Any = None
) -> httpx.Response:
    return await deploy.client(node).post(
        f"/v1/alerts/{alert_id}/reshare-requests/{request_id}/{verb}",
        headers=deploy.analyst(node) if headers is None else headers,
    )


async def customs_feed(deploy: Deployment) -> list[dict[str, Any]]:
    response = await deploy.client(CUSTOMS).get("/v1/feed", headers=deploy.analyst(CUSTOMS))
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_unrestricted_alert_is_reshared_at_once(deploy: Deployment) -> None:
    alert_id = await post_alert(deploy, EXAMPLE_SEIZURE)  # AMBER, H1
    # Before the agreement, nothing covers a share with the customs.
    refused = await ask(deploy, alert_id)
    assert refused.status_code == 422, refused.text
    assert "no sharing agreement" in refused.json()["detail"]
    await sign_customs_agreement(deploy)

    asked = await ask(deploy, alert_id)
    assert asked.status_code == 202, asked.text
    request = asked.json()
    assert request["status"] == "pending"
    assert request["restricted"] is False
    assert request["agreement_ids"] == [CUSTOMS_MOU]
    request_id = request["request_id"]
    again = await ask(deploy, alert_id)
    assert again.status_code == 409  # one open request per alert and target

    done = await eventually(
        request_in(deploy, TJ, alert_id, request_id, "executed"), what="the re-share executed"
    )
    new_id = done["new_alert_id"]
    assert new_id != alert_id
    item = await eventually(feed_has(deploy, CUSTOMS, new_id), what="the alert at the customs")
    original = await feed_has(deploy, TJ, alert_id)()
    assert item["case"] == original["case"]  # the same case, sealed anew
    assert item["case"]["items"][0]["quantity"] == "12.5"
    assert "nominal" not in item  # the customs agreement does not allow personal data
    header = item["header"]
    assert header["origin_node"] == KG
    assert header["origin_agency"] == "kg-border-service"
    assert header["supersedes"] is None
    assert header["agreement_ids"] == [CUSTOMS_MOU]
    assert header["handling"] == original["header"]["handling"]

    # The origin sees the request: its analyst and its node's terminal.
    origin_view = await eventually(
        request_in(deploy, KG, alert_id, request_id, "executed"), what="the origin's view"
    )
    assert origin_view["decided_by"] == "policy"
    assert origin_view["requesting_agency"] == "tj-drug-control-agency"
    terminal = await deploy.client(KG).get(
        f"/v1/alerts/{alert_id}/reshare-requests", headers=deploy.terminal(KG)
    )
    assert terminal.status_code == 200
    assert [r["request_id"] for r in terminal.json()["requests"]] == [request_id]

    steps = await eventually(steps_in_ledger(deploy, alert_id, STEPS), what="the steps")
    assert [s["index"] for s in steps] == sorted(s["index"] for s in steps)
    assert steps[0]["actor_node"] == TJ
    assert steps[0]["detail"]["target_agency"] == CUSTOMS_AGENCY
    assert steps[1]["actor_node"] == steps[2]["actor_node"] == KG
    assert steps[2]["detail"]["original_alert_id"] == alert_id
    assert steps[2]["detail"]["new_alert_id"] == new_id
    assert steps[2]["agreement_ids"] == [CUSTOMS_MOU]
    shared = await eventually(
        ledger_has(deploy, KG, alert_id=new_id, type="alert_shared"), what="the new share"
    )
    assert shared[0]["recipients"] == ["kg-border-service", CUSTOMS_AGENCY]


async def test_refused_reshare_requests(deploy: Deployment) -> None:
    alert_id = await post_alert(deploy, EXAMPLE_SEIZURE)
    await sign_customs_agreement(deploy)
    # A request by an agency that is not a recipient: the alert is not there for it.
    assert (await ask(deploy, alert_id, node=UZ)).status_code == 404
    assert (await ask(deploy, alert_id, node=CUSTOMS)).status_code == 404
    # Only an analyst of the node's agency may ask.
    assert (await ask(deploy, alert_id, headers=deploy.terminal(TJ))).status_code == 403
    assert (await ask(deploy, alert_id, headers=deploy.auditor)).status_code == 403
    # Another agency's analyst is not admitted by this node at all.
    assert (await ask(deploy, alert_id, headers=deploy.analyst(KG))).status_code == 401
    # Targets: already a recipient, unknown, or with no agreement with the origin.
    for target in ("kg-border-service", "tj-drug-control-agency", "kg-nobody"):
        refused = await ask(deploy, alert_id, target=target)
        assert refused.status_code == 422, (target, refused.text)
    no_mou = await ask(deploy, alert_id, target="uz-customs-committee")
    assert no_mou.status_code == 422
    assert no_mou.headers["content-type"] == "application/problem+json"
    assert (await ask(deploy, alert_id, reason="x" * 501)).status_code == 422
    assert (await ask(deploy, alert_id, reason="")).status_code == 422
    # Reading the requests: not for other agencies or auditors.
    for node, headers in ((UZ, deploy.analyst(UZ)), (KG, deploy.auditor)):
        listed = await deploy.client(node).get(
            f"/v1/alerts/{alert_id}/reshare-requests", headers=headers
        )
        assert listed.status_code == 404
    info = await deploy.runtimes[KG].bus.js.stream_info("BLO_ALERTS")
    assert info.state.messages == 1  # nothing but the alert itself was published


async def test_restricted_alert_waits_for_the_originator(deploy: Deployment) -> None:
    denied_id = await post_alert(deploy, h2())
    approved_id = await post_alert(deploy, h2())
    await sign_customs_agreement(deploy)

    # Denied: never reaches the customs.
    first = await ask(deploy, denied_id)
    assert first.status_code == 202, first.text
    assert first.json()["restricted"] is True
    first_id = first.json()["request_id"]
    await eventually(
        request_in(deploy, KG, denied_id, first_id, "pending"), what="the request at the origin"
    )
    denied = await decide(deploy, KG, denied_id, first_id, "deny")
    assert denied.status_code == 202, denied.text
    assert denied.json()["status"] == "denied"
    await eventually(request_in(deploy, TJ, denied_id, first_id, "denied"), what="TJ told")
    assert (await decide(deploy, KG, denied_id, first_id, "approve")).status_code == 409
    await eventually(
        steps_in_ledger(deploy, denied_id, ["reshare_requested", "reshare_denied"]),
        what="the denial in the ledger",
    )

    # Pending until the originator decides; nobody else may decide.
    second = await ask(deploy, approved_id)
    second_id = second.json()["request_id"]
    await eventually(
        request_in(deploy, KG, approved_id, second_id, "pending"), what="the second request"
    )
    assert (await decide(deploy, TJ, approved_id, second_id, "approve")).status_code == 404
    outsider = await decide(deploy, KG, approved_id, second_id, "approve", deploy.terminal(KG))
    assert outsider.status_code == 403
    for headers in (deploy.analyst(TJ), deploy.analyst(CUSTOMS)):  # other agencies: not admitted
        outsider = await decide(deploy, KG, approved_id, second_id, "approve", headers)
        assert outsider.status_code == 401
    await asyncio.sleep(0.5)
    assert await customs_feed(deploy) == []
    assert (await request_in(deploy, TJ, approved_id, second_id, "pending")()) is not None

    approved = await decide(deploy, KG, approved_id, second_id, "approve")
    assert approved.status_code == 202, approved.text
    done = await eventually(
        request_in(deploy, TJ, approved_id, second_id, "executed"), what="the execution"
    )
    new_id = done["new_alert_id"]
    await eventually(feed_has(deploy, CUSTOMS, new_id), what="the alert at the customs")
    items = await customs_feed(deploy)
    assert [i["alert_id"] for i in items] == [new_id]  # the denied one never came
    assert items[0]["header"]["handling"]["code"] == "H2"

    steps = await eventually(steps_in_ledger(deploy, approved_id, STEPS), what="the steps")
    assert steps[1]["detail"]["decided_by"] == done["decided_by"] != "policy"
    assert steps[1]["actor_agency"] == "kg-border-service"
