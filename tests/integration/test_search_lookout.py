"""Search and lookout on real servers: four demo nodes, a ledger writer, nats-server, Postgres.

An analyst's search finds a name or plate however it was spelled; an officer's lookout at a
crossing hits the active risk alerts its agency received, and the originator sees the hit in its
sent-alerts view and in the ledger; while NATS is down the check still answers and the hit waits
in the node's receipt outbox (``pending_receipts``) for the relay.
"""

# ruff: noqa: RUF003
from __future__ import annotations

import asyncio
import copy
import socket
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import text
from typer.testing import CliRunner

from blo_exchange.bootstrap.app import create_app
from blo_exchange.cli.main import app as cli
from blo_exchange.crypto.canonical import b64u_encode
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.pending_receipts import SqlReceiptQueue
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time, utc_now
from blo_exchange.embedded import NatsServer
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has, ledger_has
from tests.integration.web_client import sign_in

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"
CYRILLIC_PLATE = "01\u0410123\u0412\u0421"  # 01А123ВС with Cyrillic А, В, С
LATIN_PLATE = "01A123BC"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def post(deploy: Deployment, node: str, body: dict[str, Any]) -> str:
    response = await deploy.client(node).post(
        "/v1/alerts",
        json=body,
        headers=deploy.terminal(node) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    alert_id: str = response.json()["alert_id"]
    return alert_id


def seizure(name: str, plate: str, *, pair: str = "KG-TJ", point: str = "KG-KARAMYK") -> Any:
    body = copy.deepcopy(EXAMPLE_SEIZURE)
    body["border_pair"], body["crossing_point"] = pair, point
    body["case"]["conveyance"]["identifier"] = plate
    body["nominal"]["persons"][0]["name"] = name
    return body


def risk(plate: str, person: str, *, valid_for: timedelta = timedelta(days=7)) -> Any:
    body = copy.deepcopy(EXAMPLE_RISK)
    body["handling"] = {"scheme": "none"}
    body["case"]["targets"] = [
        {"type": "plate", "value": plate},
        {"type": "person", "value": person},
    ]
    body["case"]["valid_until"] = format_time(utc_now() + valid_for)
    return body


async def search(deploy: Deployment, node: str, field: str, q: str) -> list[str]:
    response = await deploy.client(node).get(
        "/v1/search", params={"field": field, "q": q}, headers=deploy.analyst(node)
    )
    assert response.status_code == 200, response.text
    return [item["alert_id"] for item in response.json()["items"]]


async def lookout(deploy: Deployment, node: str, field: str, value: str) -> dict[str, Any]:
    response = await deploy.client(node).post(
        "/v1/lookout", json={"field": field, "value": value}, headers=deploy.terminal(node)
    )
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def hit_ids(result: dict[str, Any]) -> list[str]:
    return [hit["alert"]["alert_id"] for hit in result["hits"]]


async def test_search_finds_names_and_plates_across_scripts(deploy: Deployment) -> None:
    upper = await post(deploy, KG, seizure("RAKHIMOV Alisher", LATIN_PLATE))
    mixed = await post(deploy, KG, seizure("Rahimov Bakhtiyor", "02B777KG"))
    other = await post(deploy, KG, seizure("Karimov Anvar", "03C555KG"))
    for alert_id in (upper, mixed, other):
        await eventually(feed_has(deploy, TJ, alert_id), what="the alerts in TJ's feed")

    # Рахимов (Cyrillic) finds RAKHIMOV and Rahimov, not Karimov.
    assert sorted(await search(deploy, TJ, "person", "Рахимов")) == sorted([upper, mixed])
    assert await search(deploy, TJ, "person", "Рахимов Алишер") == [upper]
    # 01А123ВС with Cyrillic letters finds 01A123BC, with or without spacing.
    assert await search(deploy, TJ, "plate", CYRILLIC_PLATE) == [upper]
    assert await search(deploy, TJ, "plate", "01 a 123-bc") == [upper]
    assert await search(deploy, TJ, "phone", "90 000 00 01") != []  # the example's phone
    # The originating agency's analyst searches its own agency's copies too.
    assert sorted(await search(deploy, KG, "person", "Rakhimov")) == sorted([upper, mixed])

    # Another agency's inbox is not searched: UZ never received these.
    assert await search(deploy, UZ, "person", "Рахимов") == []
    # A query that gives no key is a 422, a terminal may not search (403).
    response = await deploy.client(TJ).get(
        "/v1/search", params={"field": "person", "q": "."}, headers=deploy.analyst(TJ)
    )
    assert response.status_code == 422, response.text
    response = await deploy.client(TJ).get(
        "/v1/search", params={"field": "person", "q": "Rahimov"}, headers=deploy.terminal(TJ)
    )
    assert response.status_code == 403, response.text


async def test_search_never_finds_a_nominal_part_the_agency_was_not_given(
    deploy: Deployment, database_url: str
) -> None:
    # TJ-UZ agreement: no personal data. UZ gets the case (plate) but not the name.
    alert_id = await post(
        deploy, TJ2, seizure("Shermatov Ulugbek", "04D444TJ", pair="TJ-UZ", point="TJ-FOTEHOBOD")
    )
    item = await eventually(feed_has(deploy, UZ, alert_id), what="the alert in UZ's feed")
    assert "nominal" not in item
    assert await search(deploy, UZ, "plate", "04D444TJ") == [alert_id]
    assert await search(deploy, UZ, "person", "Шерматов") == []
    assert await search(deploy, TJ2, "person", "Шерматов") == [alert_id]  # TJ sent it

    # A key planted in UZ's index (by whoever can write its database) shows nothing the alert
    # itself does not say: every result is re-checked against the opened alert.
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO search_keys (node_id, alert_id, field, source, key)"
                    " VALUES (:node, :alert, 'person', 'nominal', 'shermatov')"
                ),
                {"node": UZ, "alert": alert_id},
            )
    finally:
        await engine.dispose()
    assert await search(deploy, UZ, "person", "Shermatov") == []

    # Erasing an alert's nominal keys (the nominal part's erasure) leaves the case keys.
    index = deploy.runtimes[TJ2].lookout
    assert index is not None
    assert await index.index.forget(alert_id) > 0
    assert await search(deploy, TJ2, "person", "Шерматов") == []
    assert await search(deploy, TJ2, "plate", "04D444TJ") == [alert_id]


async def test_a_lookout_hit_reaches_the_originator_and_the_ledger(deploy: Deployment) -> None:
    active = await post(deploy, KG, risk(LATIN_PLATE, "RAKHIMOV Alisher"))
    await eventually(feed_has(deploy, TJ, active), what="the risk alert in TJ's feed")

    # The officer at Karamyk (TJ) types the plate with Cyrillic letters.
    result = await lookout(deploy, TJ, "plate", CYRILLIC_PLATE)
    assert result["crossing_point"] == "TJ-KARAMYK"
    assert hit_ids(result) == [active]
    [hit] = result["hits"]
    assert hit["receipt"] == "published"
    assert hit["alert"]["case"]["targets"][0]["value"] == LATIN_PLATE

    # The ledger has the signed hit, in TJ's name, at TJ's crossing; the query is not in it.
    [entry] = await eventually(
        ledger_has(deploy, KG, type="hit", alert_id=active), what="the hit in the ledger"
    )
    assert (entry["actor_agency"], entry["actor_node"]) == ("tj-drug-control-agency", TJ)
    assert entry["detail"]["crossing_point"] == "TJ-KARAMYK"
    assert entry["detail"]["matched"] == "plate"
    assert CYRILLIC_PLATE not in str(entry)
    assert LATIN_PLATE not in str(entry)

    # KG's terminal sees it: the API and the officer's sent-alerts page.
    response = await deploy.client(KG).get(f"/v1/alerts/{active}/hits", headers=deploy.terminal(KG))
    assert response.status_code == 200, response.text
    [reported] = response.json()["hits"]
    assert reported["crossing_point"] == "TJ-KARAMYK"
    assert reported["agency"] == "tj-drug-control-agency"
    # ...and a recipient's analyst may not read the originator's hits (404, not 403).
    response = await deploy.client(TJ).get(f"/v1/alerts/{active}/hits", headers=deploy.analyst(TJ))
    assert response.status_code == 404, response.text

    # A name in another script hits too; UZ, which never received the alert, gets nothing.
    assert hit_ids(await lookout(deploy, TJ, "person", "Рахимов")) == [active]
    assert hit_ids(await lookout(deploy, UZ, "plate", LATIN_PLATE)) == []
    metrics = (await deploy.client(TJ).get("/metrics")).text
    assert f'blo_lookout_hits_total{{node="{TJ}"}} 2.0' in metrics
    assert f'blo_hit_receipts_queued_total{{node="{TJ}"}} 0.0' in metrics


async def test_expired_superseded_and_seizure_alerts_never_match(
    deploy: Deployment, database_url: str
) -> None:
    short = await post(deploy, KG, risk("05E505KG", "Nobody", valid_for=timedelta(seconds=4)))
    seized = await post(deploy, KG, seizure("Somebody", "06F606KG"))
    first = await post(deploy, KG, risk("07G707KG", "Nobody"))
    for alert_id in (short, seized, first):
        await eventually(feed_has(deploy, TJ, alert_id), what="the alerts in TJ's feed")
    assert hit_ids(await lookout(deploy, TJ, "plate", "05E505KG")) == [short]
    assert hit_ids(await lookout(deploy, TJ, "plate", "06F606KG")) == []  # a seizure alert

    second_body = risk("07G707KG", "Nobody")
    second_body["supersedes"] = first
    second = await post(deploy, KG, second_body)
    await eventually(feed_has(deploy, TJ, second), what="the superseding alert in TJ's feed")
    assert hit_ids(await lookout(deploy, TJ, "plate", "07G707KG")) == [second]

    # Only the origin agency supersedes its alert: a row claiming another agency's alert
    # supersedes it (what a partner's forged "supersedes" would index) silences nothing.
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO search_alerts (node_id, alert_id, agency_id, feed_seq, kind,"
                    " origin_agency, supersedes) VALUES (:node, :alert, :agency, -1,"
                    " 'risk', 'uz-customs-committee', :second)"
                ),
                {
                    "node": TJ,
                    "alert": str(uuid.uuid4()),
                    "agency": "tj-drug-control-agency",
                    "second": second,
                },
            )
    finally:
        await engine.dispose()
    assert hit_ids(await lookout(deploy, TJ, "plate", "07G707KG")) == [second]

    await asyncio.sleep(4.5)  # until the short one's valid_until has passed
    assert hit_ids(await lookout(deploy, TJ, "plate", "05E505KG")) == []


async def test_a_hit_found_while_nats_is_down_is_published_when_it_returns(
    deploy: Deployment, nats_server: NatsServer
) -> None:
    alert_id = await post(deploy, KG, risk("08H808KG", "Nobody"))
    await eventually(feed_has(deploy, TJ, alert_id), what="the risk alert in TJ's feed")
    lookout_service = deploy.runtimes[TJ].lookout
    assert lookout_service is not None
    await lookout_service.index.catch_up()
    outbox = SqlReceiptQueue(session_factory(deploy.runtimes[TJ].engine), node_id=TJ)

    nats_server.stop()
    try:
        result = await lookout(deploy, TJ, "plate", "08H808KG")  # from the node's own data
        assert hit_ids(result) == [alert_id]
        assert result["hits"][0]["receipt"] == "queued"
        [kept] = await outbox.unsent(100)  # the node's one receipt outbox, signed bytes and all
        assert UnverifiedReceipt.parse(kept.payload).body["type"] == "hit"
    finally:
        nats_server.start()
    [entry] = await eventually(
        ledger_has(deploy, KG, type="hit", alert_id=alert_id),
        timeout=60.0,
        what="the queued hit in the ledger once NATS is back",
    )
    assert entry["detail"]["crossing_point"] == "TJ-KARAMYK"
    assert entry["record"] == b64u_encode(kept.payload)  # the exact bytes signed at the check
    await eventually(
        lambda: _nothing_unsent(outbox), what="the relay to mark the hit sent after the ack"
    )


async def _nothing_unsent(outbox: SqlReceiptQueue) -> bool:
    return await outbox.unsent(100) == []


def browser(deploy: Deployment, node: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        transport=deploy.client(node)._transport, base_url=f"https://{node}.test"
    )


async def test_the_pages_run_a_lookout_search_and_show_the_hit_to_the_sender(
    deploy: Deployment,
) -> None:
    alert_id = await post(deploy, KG, risk(LATIN_PLATE, "RAKHIMOV Alisher"))
    await eventually(feed_has(deploy, TJ, alert_id), what="the risk alert in TJ's feed")
    officer, sender, analyst = browser(deploy, TJ), browser(deploy, KG), browser(deploy, TJ)
    try:
        csrf = await sign_in(officer, deploy.seed.terminal_tokens[TJ])
        page = await officer.get("/officer/lookout", params={"lang": "ru"})
        assert page.status_code == 200
        assert "Проверка по ориентировкам" in page.text
        form = {"csrf": csrf, "field": "plate", "value": CYRILLIC_PLATE}
        refused = await officer.post("/officer/lookout", data=form | {"csrf": "forged"})
        assert refused.status_code == 403
        checked = await officer.post("/officer/lookout", data=form)
        assert checked.status_code == 200, checked.text
        assert f'data-alert="{alert_id}"' in checked.text
        assert 'data-receipt="published"' in checked.text
        nothing = await officer.post("/officer/lookout", data=form | {"value": "99Z999ZZ"})
        assert 'data-alert="' not in nothing.text
        too_short = await officer.post("/officer/lookout", data=form | {"value": "-"})
        assert too_short.status_code == 422

        # The sender's sent-alerts list shows where it hit.
        await sign_in(sender, deploy.seed.terminal_tokens[KG])

        async def hit_shown() -> bool:
            table = await sender.get("/officer/sent/table", params={"alert": alert_id})
            return 'class="hit" data-crossing="TJ-KARAMYK"' in table.text

        await eventually(hit_shown, what="the hit in KG's sent list")

        await sign_in(analyst, deploy.seed.analyst_tokens[TJ])
        found = await analyst.get("/analyst/search", params={"field": "person", "q": "Рахимов"})
        assert found.status_code == 200
        assert f"/analyst/alerts/{alert_id}" in found.text  # the risk's person target
        found = await analyst.get(
            "/analyst/search", params={"field": "plate", "q": "01\u0430123\u0432\u0441"}
        )
        assert f"/analyst/alerts/{alert_id}" in found.text
    finally:
        for client in (officer, sender, analyst):
            await client.aclose()


async def test_the_cli_runs_a_lookout_check_against_a_served_node(deploy: Deployment) -> None:
    """``blo-exchange lookout check`` against the TJ node served over HTTP on loopback."""
    alert_id = await post(deploy, KG, risk("09J909KG", "Nobody"))
    await eventually(feed_has(deploy, TJ, alert_id), what="the risk alert in TJ's feed")
    runtime = deploy.runtimes[TJ]
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    app = create_app(runtime.settings, services=runtime.services)
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:

        async def started() -> bool:
            return bool(server.started)

        await eventually(started, what="the HTTP server")
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        env = {"BLO_URL": url, "BLO_TOKEN": deploy.seed.terminal_tokens[TJ]}

        def run(*args: str) -> Any:
            return CliRunner().invoke(cli, ["lookout", "check", *args], env=env)

        hit = await asyncio.to_thread(run, "09 J 909-KG")
        assert hit.exit_code == 0, hit.output
        assert alert_id in hit.output
        assert "TJ-KARAMYK" in hit.output
        miss = await asyncio.to_thread(run, "--field", "person", "Nobody Else At All")
        assert miss.exit_code == 0, miss.output
        assert "no active risk alert matches" in miss.output
        wrong = await asyncio.to_thread(run, "--crossing-point", "KG-KARAMYK", "09J909KG")
        assert wrong.exit_code == 1  # not this node's crossing point: the node refuses
        env["BLO_TOKEN"] = deploy.seed.analyst_tokens[TJ]
        as_analyst = await asyncio.to_thread(run, "09J909KG")
        assert as_analyst.exit_code == 1  # an analyst is no officer at a crossing: 403
        assert "not allowed" in as_analyst.output
    finally:
        server.should_exit = True
        await task
        sock.close()
