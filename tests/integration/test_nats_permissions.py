"""NATS itself refuses what a node must not do: publish for another border pair, read another
node's consumer, sniff subjects, delete or purge a stream. Per-node nkey users, checked on a real
nats-server configured by ``prepare_nats_auth``."""

from __future__ import annotations

import asyncio
import json
import ssl
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import nats
import pytest
from nats.aio.client import Client
from nats.errors import TimeoutError as NatsTimeout

from blo_exchange.bus.connection import BusConnection, connect
from blo_exchange.bus.consumers import node_consumer_spec, provision_bus
from blo_exchange.bus.permissions import NatsAuth, inbox_prefix, prepare_nats_auth
from blo_exchange.bus.streams import DIRECTORY_STREAM, stream_messages
from blo_exchange.crypto.nkeys import new_user_seed, write_seed_file
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.demo.supervisor import demo_nats
from blo_exchange.domain.subjects import DIRECTORY_SUBJECT
from blo_exchange.embedded import NatsServer

KG, TJ = DEMO_NODES[0], DEMO_NODES[1]


@pytest.fixture
def secured(runtime_dir: Path) -> Iterator[tuple[NatsServer, NatsAuth]]:
    base = Path(tempfile.mkdtemp(prefix="nats-auth-", dir=runtime_dir))
    auth = prepare_nats_auth(DEMO_NODES, base / "keys")
    with NatsServer(base / "nats", extra_config=auth.config) as server:
        yield server, auth


class Session:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.errors: list[str] = []


@pytest.fixture
async def operator(secured: tuple[NatsServer, NatsAuth]) -> AsyncIterator[BusConnection]:
    server, auth = secured
    bus = await connect(auth.operator_url(server.url), name="operator", timeout=2.0)
    await provision_bus(bus, DEMO_NODES, duplicate_window=60.0)
    yield bus
    await bus.close()


async def as_node(
    server: NatsServer, auth: NatsAuth, node_id: str, tls: ssl.SSLContext | None = None
) -> Session:
    session: Session

    async def on_error(exc: Exception) -> None:
        session.errors.append(str(exc))

    client = await nats.connect(
        server.url,
        nkeys_seed=str(auth.node_seed_files[node_id]),
        inbox_prefix=inbox_prefix(node_id),
        error_cb=on_error,
        max_reconnect_attempts=0,
        **({} if tls is None else {"tls": tls}),
    )
    session = Session(client)
    return session


async def violation_reported(session: Session) -> None:
    for _ in range(40):
        if any("permissions violation" in e.lower() for e in session.errors):
            session.errors.clear()
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"no permissions violation reported: {session.errors}")


async def refused(session: Session, action: Any) -> None:
    """The request gets no answer and the server reports a permissions violation."""
    with pytest.raises((NatsTimeout, TimeoutError, nats.errors.Error)):
        await action
    await violation_reported(session)


async def messages(operator: BusConnection) -> int:
    info = await operator.js.stream_info("BLO_ALERTS")
    return int(info.state.messages)


async def test_node_publishes_its_own_pairs_only(
    secured: tuple[NatsServer, NatsAuth], operator: BusConnection
) -> None:
    server, auth = secured
    kg = await as_node(server, auth, KG.id)
    try:
        js = kg.client.jetstream(timeout=1.0)
        ack = await js.publish("blo.v1.alerts.KG-TJ.seizure", b"x", headers={"Nats-Msg-Id": "a1"})
        assert ack.seq == 1
        await refused(kg, js.publish("blo.v1.alerts.TJ-UZ.seizure", b"x"))
        await refused(kg, js.publish("blo.v1.receipts.TJ-UZ", b"x"))
        assert await messages(operator) == 1
    finally:
        await kg.client.close()


async def test_node_reads_only_its_own_consumer(
    secured: tuple[NatsServer, NatsAuth], operator: BusConnection
) -> None:
    server, auth = secured
    await operator.publish("blo.v1.alerts.KG-TJ.seizure", b"x", msg_id="m1")
    kg = await as_node(server, auth, KG.id)
    try:
        js = kg.client.jetstream(timeout=1.0)
        own = await js.pull_subscribe_bind(
            durable=node_consumer_spec(KG).durable, stream="BLO_ALERTS"
        )
        [message] = await own.fetch(1, timeout=2.0)
        await message.ack()
        other = await js.pull_subscribe_bind(
            durable=node_consumer_spec(TJ).durable, stream="BLO_ALERTS"
        )
        await refused(kg, other.fetch(1, timeout=1.0))
        # Nor can it make itself a consumer with a wider filter, or sniff core subjects.
        await refused(kg, js.add_consumer("BLO_ALERTS", durable_name="sniffer"))
        await kg.client.subscribe("blo.v1.alerts.>")
        await violation_reported(kg)
    finally:
        await kg.client.close()


async def test_the_bulk_lane_is_its_own_pairs_and_its_own_consumer_only(
    secured: tuple[NatsServer, NatsAuth], operator: BusConnection
) -> None:
    server, auth = secured
    kg = await as_node(server, auth, KG.id)
    try:
        js = kg.client.jetstream(timeout=1.0)
        await js.publish("blo.v1.alerts.KG-TJ.seizure.bulk", b"x", headers={"Nats-Msg-Id": "b1"})
        await refused(kg, js.publish("blo.v1.alerts.TJ-UZ.seizure.bulk", b"x"))
        own = await js.pull_subscribe_bind(
            durable=node_consumer_spec(KG, bulk=True).durable, stream="BLO_ALERTS"
        )
        [message] = await own.fetch(1, timeout=2.0)
        assert message.subject == "blo.v1.alerts.KG-TJ.seizure.bulk"
        await message.ack()
        other = await js.pull_subscribe_bind(
            durable=node_consumer_spec(TJ, bulk=True).durable, stream="BLO_ALERTS"
        )
        await refused(kg, other.fetch(1, timeout=1.0))
        live = await js.pull_subscribe_bind(
            durable=node_consumer_spec(KG).durable, stream="BLO_ALERTS"
        )
        with pytest.raises((NatsTimeout, TimeoutError)):  # the live lane never sees it
            await live.fetch(1, timeout=1.0)
    finally:
        await kg.client.close()


async def test_node_reads_the_directory_stream_at_start_but_no_other_by_sequence(
    secured: tuple[NatsServer, NatsAuth], operator: BusConnection
) -> None:
    """What the node does at start to rebuild its directory copy (``bootstrap.directory``) is
    allowed; the same read of the alerts stream, which would bypass its consumer's filter, is
    not."""
    server, auth = secured
    await operator.publish(DIRECTORY_SUBJECT, b"statement", msg_id="s1")
    await operator.publish("blo.v1.alerts.TJ-UZ.seizure", b"x", msg_id="a-tj-uz")
    kg = await as_node(server, auth, KG.id)
    try:
        bus = BusConnection(kg.client, timeout=1.0)
        assert await stream_messages(bus.js, DIRECTORY_STREAM) == [b"statement"]
        await refused(kg, bus.js.get_msg("BLO_ALERTS", 1))
    finally:
        await kg.client.close()


async def test_nobody_deletes_or_purges(
    secured: tuple[NatsServer, NatsAuth], operator: BusConnection
) -> None:
    server, auth = secured
    kg = await as_node(server, auth, KG.id)
    try:
        js = kg.client.jetstream(timeout=1.0)
        await refused(kg, js.delete_stream("BLO_ALERTS"))
        await refused(kg, js.purge_stream("BLO_ALERTS"))
    finally:
        await kg.client.close()
    with pytest.raises((NatsTimeout, TimeoutError, nats.errors.Error)):
        await operator.js.delete_stream("BLO_ALERTS")
    assert (await operator.js.stream_info("BLO_ALERTS")).config.name == "BLO_ALERTS"


async def connect_as(url: str, **options: Any) -> None:
    """Connect and close; a refused connection raises (after its socket is closed: nats-py
    leaves it open on an authorization error)."""
    client = Client()
    try:
        await client.connect(
            url, allow_reconnect=False, max_reconnect_attempts=0, connect_timeout=2, **options
        )
    finally:
        await client.close()


async def test_anonymous_and_unknown_users_are_refused(
    secured: tuple[NatsServer, NatsAuth], tmp_path: Path
) -> None:
    server, _ = secured
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await connect_as(server.url)
    stranger = tmp_path / "stranger.nk"
    write_seed_file(stranger, new_user_seed())
    with pytest.raises(nats.errors.Error, match="Authorization Violation"):
        await connect_as(server.url, nkeys_seed=str(stranger))


async def test_the_demo_server_refuses_anonymous_clients(runtime_dir: Path) -> None:
    """``make run``'s nats-server is the one with nkey users, not an open one beside them, and
    it speaks TLS only, with a certificate from the demo CA."""
    base = Path(tempfile.mkdtemp(prefix="demo-nats-", dir=runtime_dir))
    server, auth = demo_nats(base)
    ca = ssl.create_default_context(cafile=str(base / "tls" / "ca.pem"))
    with server:
        # The server requires TLS of every client before anything else ...
        reader, writer = await asyncio.open_connection(server.host, server.port)
        info = json.loads((await reader.readline()).removeprefix(b"INFO "))
        writer.close()
        await writer.wait_closed()
        assert info["tls_required"] is True
        # ... and over TLS (its certificate checked against the demo CA), a known user.
        with pytest.raises(nats.errors.Error, match="Authorization Violation"):
            await asyncio.wait_for(connect_as(server.url, tls=ca), 10)
        # Each node connects with its own seed, and with it reads its own consumer only.
        bus = await connect(
            auth.operator_url(server.url),
            name="operator",
            tls_ca_file=base / "tls" / "ca.pem",
            timeout=2.0,
        )
        await provision_bus(bus, DEMO_NODES, duplicate_window=60.0)
        await bus.close()
        kg = await as_node(server, auth, KG.id, tls=ca)
        try:
            js = kg.client.jetstream(timeout=1.0)
            other = await js.pull_subscribe_bind(
                durable=node_consumer_spec(TJ).durable, stream="BLO_ALERTS"
            )
            await refused(kg, other.fetch(1, timeout=1.0))
        finally:
            await kg.client.close()
