"""Issue 13 against the running demo, as an attacker would try it: streams that outlive their
credential, streams and sign-ins without limit, principals of other nodes, batches that cost one
request. One demo serves the module; each test uses principals the others leave alone."""

from __future__ import annotations

import asyncio
import copy
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from blo_exchange.crypto.tls import client_context
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import async_url, create_engine, session_factory
from blo_exchange.demo.processes import client_tls
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from tests.e2e.demo_process import Demo

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"
BURST = 50
ENDS_WITHIN = 8.0  # the directory cache (2 s) + the stream's recheck (2 s), with slack


@pytest.fixture(scope="module")
def demo(runtime_dir: Path) -> Iterator[dict[str, Any]]:
    base = Path(os.path.realpath(runtime_dir)) / f"sec-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    base.chmod(0o711)
    running = Demo(base / "blo", env={"BLO_RATE_LIMIT": "1", "BLO_RATE_BURST": str(BURST)})
    try:
        yield running.start()
        assert running.interrupt() == 0  # Ctrl-C stops the servers too; SIGKILL would orphan them
    finally:
        running.kill()


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def revoke(credentials: dict[str, Any], node_id: str, label: str) -> None:
    """The node's agency's administrator revokes a principal in the agency's own database."""
    agency = credentials["nodes"][node_id]["agency"]
    engine = create_engine(async_url(credentials["databases"][agency]), pool_size=1)
    try:
        directory = SqlDirectory(session_factory(engine))
        [principal] = [p for p in await directory.principals() if p.label == label]
        await directory.revoke_principal(principal.id, datetime.now(UTC))
    finally:
        await engine.dispose()


async def ends_within(response: httpx.Response, seconds: float) -> list[str]:
    """Read the stream to its end; fail if it is still open after ``seconds``."""
    lines: list[str] = []

    async def read() -> None:
        async for line in response.aiter_lines():
            lines.append(line)

    await asyncio.wait_for(read(), seconds)
    return lines


def https(demo: dict[str, Any], **options: Any) -> httpx.AsyncClient:
    """A client that checks the nodes' certificates against the demo CA."""
    return httpx.AsyncClient(verify=client_tls(demo), **options)


@pytest.fixture
async def client(demo: dict[str, Any]) -> AsyncIterator[httpx.AsyncClient]:
    async with https(demo, timeout=httpx.Timeout(10.0, read=30.0)) as c:
        yield c


async def test_an_open_feed_stream_ends_when_its_credential_is_revoked(
    demo: dict[str, Any], client: httpx.AsyncClient
) -> None:
    node = demo["nodes"][TJ2]
    token = node["analyst_token"]
    async with client.stream("GET", node["url"] + "/v1/feed/stream", headers=bearer(token)) as sse:
        assert sse.status_code == 200
        started = time.monotonic()
        await revoke(demo, TJ2, f"{TJ2} analyst")
        await ends_within(sse, ENDS_WITHIN)
        assert time.monotonic() - started < ENDS_WITHIN
    again = await client.get(node["url"] + "/v1/feed/stream", headers=bearer(token))
    assert again.status_code == 401


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, url: str, token: str) -> httpx.Response:
    form = await client.get(url + "/sign-in")
    return await client.post(
        url + "/sign-in", data={"token": token, "csrf": hidden(form.text, "csrf"), "next": ""}
    )


async def test_the_web_stream_ends_on_sign_out(demo: dict[str, Any]) -> None:
    url = demo["nodes"][TJ]["url"]
    async with https(demo, timeout=httpx.Timeout(10.0, read=30.0)) as browser:
        signed_in = await sign_in(browser, url, demo["nodes"][TJ]["analyst_token"])
        assert signed_in.status_code == 303, signed_in.text
        page = await browser.get(url + "/analyst")
        csrf = hidden(page.text, "csrf")
        async with browser.stream("GET", url + "/analyst/stream") as sse:
            assert sse.status_code == 200
            assert sse.headers["content-type"].startswith("text/event-stream")
            out = await browser.post(url + "/sign-out", data={"csrf": csrf})
            assert out.status_code == 303
            await ends_within(sse, ENDS_WITHIN)


async def test_open_streams_are_capped_per_principal(
    demo: dict[str, Any], client: httpx.AsyncClient
) -> None:
    node = demo["nodes"][KG]
    headers = bearer(node["analyst_token"])
    async with contextlib_streams(client, node["url"] + "/v1/feed/stream", headers, 4) as opened:
        assert [s.status_code for s in opened] == [200] * 4
        fifth = await client.get(node["url"] + "/v1/feed/stream", headers=headers)
        assert fifth.status_code == 429
        assert fifth.headers["content-type"] == "application/problem+json"
    # Closed streams give their slots back (once the server has seen them close).
    deadline = time.monotonic() + 5
    while True:
        async with client.stream("GET", node["url"] + "/v1/feed/stream", headers=headers) as sse:
            if sse.status_code == 200 or time.monotonic() > deadline:
                assert sse.status_code == 200
                break
        await asyncio.sleep(0.2)


class contextlib_streams:  # noqa: N801 - reads as the context manager it is
    """``count`` streams of one URL held open together."""

    def __init__(
        self, client: httpx.AsyncClient, url: str, headers: dict[str, str], count: int
    ) -> None:
        self._requests = [client.stream("GET", url, headers=headers) for _ in range(count)]

    async def __aenter__(self) -> list[httpx.Response]:
        return [await request.__aenter__() for request in self._requests]

    async def __aexit__(self, *exc: object) -> None:
        for request in self._requests:
            await request.__aexit__(None, None, None)


async def test_sign_in_is_throttled_per_address(demo: dict[str, Any]) -> None:
    url = demo["nodes"][UZ]["url"]
    async with https(demo, timeout=10.0) as browser:
        statuses = [(await sign_in(browser, url, "blo_" + "x" * 43)).status_code for _ in range(12)]
    assert statuses[:10] == [401] * 10
    assert statuses[10:] == [429, 429]


async def test_a_node_admits_only_its_own_principals(demo: dict[str, Any]) -> None:
    tj = demo["nodes"][TJ]["url"]
    kg_terminal = demo["nodes"][KG]["terminal_token"]
    async with https(demo, timeout=10.0) as browser:
        assert (await sign_in(browser, tj, kg_terminal)).status_code == 401
        assert (await browser.get(tj + "/officer/sent")).status_code == 303  # to sign-in
        api = await browser.get(tj + "/v1/directory", headers=bearer(kg_terminal))
        assert api.status_code == 401


async def test_each_item_of_a_batch_counts_against_the_rate_limit(
    demo: dict[str, Any], client: httpx.AsyncClient
) -> None:
    node = demo["nodes"][TJ2]
    headers = bearer(node["terminal_token"])
    alert = copy.deepcopy(EXAMPLE_SEIZURE)
    alert.update(border_pair="TJ-UZ", crossing_point="TJ-FOTEHOBOD", tlp="GREEN")
    alert.pop("nominal")
    items = [{"idempotency_key": str(uuid.uuid4()), "alert": alert} for _ in range(BURST + 10)]
    batch = await client.post(
        node["url"] + "/v1/alerts:batch", json={"alerts": items}, headers=headers
    )
    assert batch.status_code == 200, batch.text
    after = await client.get(node["url"] + "/v1/directory", headers=headers)
    assert after.status_code == 429
    assert int(after.headers["retry-after"]) >= 1


async def test_the_demo_terminal_bound_to_a_device_needs_its_certificate(
    demo: dict[str, Any],
) -> None:
    """``make run`` issues a device certificate from a demo agency CA and binds a KG terminal to
    it; the KG node verifies device certificates itself (BLO_CLIENT_CA_FILE)."""
    kg = demo["nodes"][KG]
    device = kg["device_terminal"]
    assert oct(Path(device["key_file"]).stat().st_mode & 0o777) == "0o600"
    alerts = kg["url"] + "/v1/alerts"
    async with https(demo, timeout=10.0) as bare:
        alone = await bare.post(alerts, json=EXAMPLE_SEIZURE, headers=bound(device, "device-1"))
        assert alone.status_code == 401
        assert "device certificate" in alone.json()["detail"]
    with_cert = client_context(
        Path(demo["ca_file"]),
        cert_file=Path(device["cert_file"]),
        key_file=Path(device["key_file"]),
    )
    async with httpx.AsyncClient(verify=with_cert, timeout=10.0) as officer:
        sent = await officer.post(alerts, json=EXAMPLE_SEIZURE, headers=bound(device, "device-2"))
        assert sent.status_code == 202, sent.text
        # The unbound demo terminals keep working without one.
        unbound = await officer.get(
            kg["url"] + "/v1/directory", headers=bearer(kg["terminal_token"])
        )
        assert unbound.status_code == 200


def bound(device: dict[str, str], name: str) -> dict[str, str]:
    return bearer(device["token"]) | {"Idempotency-Key": f"{name}-{uuid.uuid4().hex}"}
