"""Slow clients on a real node server (HTTPS, as ``serve`` runs it): headers that never finish
and bodies that stall are cut off; a body that keeps moving is not."""

from __future__ import annotations

import asyncio
import datetime as dt
import ssl
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from blo_exchange.api.client_certificates import PeerCertificateProtocol
from blo_exchange.api.slow_clients import guarded_protocol
from blo_exchange.crypto.tls import demo_pki
from tests.integration.pipeline import Deployment, deployment
from tests.integration.served import served

KG = "blo-karamyk-kg"
HEADER_SECONDS = 1.0
BODY_IDLE_SECONDS = 1.5


@pytest.fixture(params=["httptools", "h11"])
async def node(
    request: pytest.FixtureRequest, database_url: str, nats_url: str, tmp_path: Path
) -> AsyncIterator[tuple[int, ssl.SSLContext, Deployment]]:
    """The node's server on each HTTP parser the deadlines are built for (httptools, the
    default since issue 14, and h11 where httptools is not installed)."""
    async with deployment(database_url, nats_url, tmp_path / "keys") as deploy:
        pki = demo_pki(tmp_path / "tls", [KG], hosts=["127.0.0.1"], now=dt.datetime.now(dt.UTC))
        cert_file, key_file = pki.certificates[KG]
        settings = deploy.runtimes[KG].settings.model_copy(
            update={
                "tls_cert_file": cert_file,
                "tls_key_file": key_file,
                "header_timeout": HEADER_SECONDS,
                "body_idle_timeout": BODY_IDLE_SECONDS,
            }
        )
        protocol = guarded_protocol(
            header_seconds=HEADER_SECONDS,
            body_idle_seconds=BODY_IDLE_SECONDS,
            parser=request.param,
            mixins=(PeerCertificateProtocol,),
        )
        async with served(settings, deploy.runtimes[KG].services, http=protocol) as port:
            yield port, ssl.create_default_context(cafile=str(pki.ca_file)), deploy


async def closed_after(reader: asyncio.StreamReader, limit: float) -> float:
    """Seconds until the server closes the connection (EOF), at most ``limit``."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), limit)
    assert data == b""  # closed without an answer
    return time.monotonic() - started


async def test_headers_that_never_finish_are_cut_off(
    node: tuple[int, ssl.SSLContext, Deployment],
) -> None:
    port, tls, _ = node
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    writer.write(b"GET /livez HTTP/1.1\r\nHost: kg\r\n")  # no blank line: headers go on
    await writer.drain()
    waited = await closed_after(reader, HEADER_SECONDS + 5)
    assert HEADER_SECONDS - 0.2 < waited < HEADER_SECONDS + 2
    writer.close()


async def test_a_drip_fed_header_is_cut_off_though_bytes_keep_coming(
    node: tuple[int, ssl.SSLContext, Deployment],
) -> None:
    port, tls, _ = node
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    writer.write(b"GET /livez HTTP/1.1\r\n")
    started = time.monotonic()

    async def drip() -> None:
        for i in range(100):
            writer.write(f"X-{i}: y\r\n".encode())
            await writer.drain()
            await asyncio.sleep(0.2)

    dripping = asyncio.create_task(drip())
    try:
        assert await asyncio.wait_for(reader.read(), HEADER_SECONDS + 5) == b""
        assert time.monotonic() - started < HEADER_SECONDS + 2
    finally:
        dripping.cancel()
        writer.close()


async def test_a_stalled_body_is_cut_off_and_a_moving_one_is_not(
    node: tuple[int, ssl.SSLContext, Deployment],
) -> None:
    port, tls, deploy = node
    token = deploy.seed.terminal_tokens[KG]
    head = (
        "POST /v1/alerts HTTP/1.1\r\nHost: kg\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {token}\r\nIdempotency-Key: slow-body-0001\r\n"
        "Content-Length: 100\r\n\r\n"
    ).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    writer.write(head + b'{"kind":')
    await writer.drain()
    waited = await closed_after(reader, BODY_IDLE_SECONDS + 5)
    assert BODY_IDLE_SECONDS - 0.2 < waited < BODY_IDLE_SECONDS + 2
    writer.close()

    # Slow but moving (a byte every 0.5 s, longer than the idle limit in total): answered.
    body = b'{"kind": "x"}'
    head = head.replace(b"Content-Length: 100", f"Content-Length: {len(body)}".encode())
    reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=tls)
    writer.write(head)
    for byte in body[:6]:
        writer.write(bytes([byte]))
        await writer.drain()
        await asyncio.sleep(0.5)
    writer.write(body[6:])
    await writer.drain()
    status = await asyncio.wait_for(reader.readline(), 10)
    assert status.startswith(b"HTTP/1.1 422"), status
    writer.close()
