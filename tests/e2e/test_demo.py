"""``make run`` as a new user meets it: the demo's processes, real HTTP, SSE, Ctrl-C, restart."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import stat
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import nats
import nats.aio.client
import pytest
from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.demo.processes import client_tls
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from tests.e2e.demo_process import Demo


@pytest.fixture
def demo(runtime_dir: Path) -> Iterator[Demo]:
    base = Path(os.path.realpath(runtime_dir)) / f"e2e-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    base.chmod(0o711)
    running = Demo(base / "blo")
    yield running
    running.kill()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def anonymous_nats(url: str, ca_file: str) -> None:
    client = nats.aio.client.Client()
    try:
        await client.connect(
            url,
            allow_reconnect=False,
            connect_timeout=2,
            tls=ssl.create_default_context(cafile=ca_file),
        )
    finally:
        await client.close()  # nats-py leaves the socket open when refused


async def first_sse_event(
    url: str, token: str, arrived: asyncio.Queue[tuple[float, str]], verify: Any
) -> None:
    async with (
        httpx.AsyncClient(timeout=None, verify=verify) as client,
        client.stream("GET", url + "/v1/feed/stream", headers=bearer(token)) as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(("id:", "event:", "data:")):
                name, _, value = line.partition(":")
                event[name] = value.strip()
            elif line == "" and "data" in event:
                await arrived.put((time.monotonic(), json.dumps(event)))
                return


async def verify_with_witnesses(url: str, token: str, trust: Path, ca: str, roots: Path) -> str:
    """``blo-exchange ledger verify --url … --witnesses 2 --roots …``, once two witnesses
    cosigned: the ledger and witness keys are the ones the demo agencies' roots signed."""
    args = ["ledger", "verify", "--url", url, "--token", token, "--trust", str(trust), "--ca", ca]
    args += ["--roots", str(roots)]
    deadline = time.monotonic() + 20
    while True:
        result = await asyncio.to_thread(CliRunner().invoke, app, [*args, "--witnesses", "2"])
        if result.exit_code == 0:
            return result.output
        assert result.exit_code == 2, result.output  # 404: not cosigned yet; never a failure
        assert time.monotonic() < deadline, result.output
        await asyncio.sleep(0.5)


async def no_process_is_superuser(credentials: dict[str, Any]) -> None:
    """One database per agency and one for the ledger, each URL a login role that is no
    superuser; and while the system runs, no session but this one is the superuser's."""
    databases = credentials["databases"]
    assert set(databases) == {"ledger", *(n["agency"] for n in credentials["nodes"].values())}
    urls = [*databases.values(), *credentials["ledger_witness_databases"].values()]
    assert len({url.rpartition("@")[0] for url in urls}) == len(urls)  # a role each
    for url in urls:
        conn = await asyncpg.connect(url)
        try:
            assert not await conn.fetchval(
                "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
            )
        finally:
            await conn.close()
    conn = await asyncpg.connect(credentials["database_url"])  # the superuser's, for tests
    try:
        assert await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
        by_role = await conn.fetch(
            "SELECT usename, count(*) AS n FROM pg_stat_activity "
            "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() GROUP BY usename"
        )
        roles = {row["usename"]: row["n"] for row in by_role}
        assert "postgres" not in roles, roles
        nodes = {n["agency"] for n in credentials["nodes"].values()}
        assert {"blo_ledger", *(f"blo_{a.replace('-', '_')}" for a in nodes)} <= set(roles)
    finally:
        await conn.close()


async def test_demo_end_to_end(demo: Demo) -> None:
    credentials = demo.start()
    path = demo.data_dir / "demo-credentials.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(credentials) >= {"nodes", "auditor_token", "nats_url", "database_url", "databases"}
    kg = credentials["nodes"]["blo-karamyk-kg"]
    tj = credentials["nodes"]["blo-karamyk-tj"]
    uz = credentials["nodes"]["blo-oybek-uz"]
    assert set(kg) >= {"url", "agency", "border_pairs", "terminal_token", "analyst_token"}
    # The demo's NATS speaks TLS and knows its users: a client without credentials is refused.
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await anonymous_nats(
            "nats://" + credentials["nats_url"].rpartition("@")[2], credentials["ca_file"]
        )

    arrived: asyncio.Queue[tuple[float, str]] = asyncio.Queue()
    # The nodes serve HTTPS only, with certificates from the demo's CA.
    assert kg["url"].startswith("https://")
    verify = client_tls(credentials)
    listener = asyncio.create_task(first_sse_event(tj["url"], tj["analyst_token"], arrived, verify))
    await asyncio.sleep(0.5)  # the stream is open before the alert is posted
    async with httpx.AsyncClient(timeout=10.0, verify=verify) as client:
        async with httpx.AsyncClient() as untrusting:  # the system's CAs never signed it
            with pytest.raises(httpx.ConnectError):
                await untrusting.get(kg["url"] + "/livez")
        plain = "http://" + kg["url"].split("://", 1)[1]
        with pytest.raises(httpx.HTTPError):  # plain HTTP on the node's port gets no answer
            await client.get(plain + "/livez")
        hsts = (await client.get(kg["url"] + "/livez")).headers["strict-transport-security"]
        assert hsts.startswith("max-age=")
        posted_at = time.monotonic()
        response = await client.post(
            kg["url"] + "/v1/alerts",
            json=EXAMPLE_SEIZURE,
            headers=bearer(kg["terminal_token"]) | {"Idempotency-Key": str(uuid.uuid4())},
        )
        assert response.status_code == 202, response.text
        accepted = response.json()
        received_at, raw = await asyncio.wait_for(arrived.get(), timeout=5.0)
        event = json.loads(raw)
        assert event["event"] == "alert"
        alert = json.loads(event["data"])
        assert event["id"] == str(alert["feed_seq"]) == "1"  # TJ's first stored alert
        assert alert["alert_id"] == accepted["alert_id"]
        assert alert["case"]["concealment"]["method"] == "fuel_tank"
        assert received_at - posted_at < 5.0

        async def ledger_types() -> set[str]:
            entries = await client.get(
                kg["url"] + "/v1/ledger/entries",
                params={"alert_id": accepted["alert_id"]},
                headers=bearer(credentials["auditor_token"]),
            )
            return {e["type"] for e in entries.json()["entries"]}

        deadline = time.monotonic() + 10
        while {"alert_shared", "alert_delivered"} - await ledger_types():
            assert time.monotonic() < deadline, "share and delivery not in the ledger"
            await asyncio.sleep(0.1)
        await no_process_is_superuser(credentials)

        # The ledger verifies with two witnesses' cosignatures, as the README shows it.
        trust = demo.data_dir / "auditor-trust.json"
        roots = demo.data_dir / "keys" / "blo-karamyk-kg" / "pinned-roots.json"
        output = await verify_with_witnesses(
            kg["url"], credentials["auditor_token"], trust, credentials["ca_file"], roots
        )
        assert "cosigned by" in output

        uz_feed = await client.get(uz["url"] + "/v1/feed", headers=bearer(uz["analyst_token"]))
        assert uz_feed.json()["items"] == []
        listener.cancel()

        assert demo.interrupt() == 0
        with pytest.raises(httpx.ConnectError):
            await client.get(kg["url"] + "/livez")

        # Data persists across runs: the same tokens work and the alert is still in TJ's feed.
        again = demo.start()
        assert again["nodes"]["blo-karamyk-tj"]["analyst_token"] == tj["analyst_token"]
        feed = await client.get(
            again["nodes"]["blo-karamyk-tj"]["url"] + "/v1/feed",
            headers=bearer(tj["analyst_token"]),
        )
        assert [i["alert_id"] for i in feed.json()["items"]] == [accepted["alert_id"]]
        # The writer and the witnesses remember the log across runs: still consistent.
        await verify_with_witnesses(
            kg["url"], credentials["auditor_token"], trust, credentials["ca_file"], roots
        )
        assert demo.interrupt() == 0

    # No token, key or plaintext ends up in any log line.
    logs = "".join(p.read_text() for p in (demo.data_dir / "logs").glob("*.log"))
    logs += demo.output.read_text()
    secrets = [credentials["auditor_token"], kg["terminal_token"], tj["analyst_token"]]
    for secret in [*secrets, "Example Driver", "0417TJ02"]:
        assert secret not in logs
