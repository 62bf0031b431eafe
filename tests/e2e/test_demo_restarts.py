"""``make run`` looks after its own processes: each child killed with SIGKILL is reaped, started
again and serving within 10 s; Ctrl-C still stops everything.

The demo runs as a user runs it (``blo-exchange demo``); its children are found under its pid in
/proc: nats-server, the postmaster (killed alone, as a crash of it would be, leaving its backends
and lock files behind), the four nodes and the ledger writer.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blo_exchange.demo.processes import client_tls
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from tests.e2e.demo_process import Demo

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")

BACK_WITHIN = 10.0
KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"


@pytest.fixture
def demo(runtime_dir: Path) -> Iterator[Demo]:
    base = Path(os.path.realpath(runtime_dir)) / f"e2e-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    base.chmod(0o711)
    running = Demo(base / "blo")
    yield running
    running.kill()


def children(pid: int) -> dict[str, int]:
    """The demo's children by name: nats-server, postgres, each node id, ledger-writer."""
    found: dict[str, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                argv = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            command = [a.decode(errors="replace") for a in argv if a]
            if not command or state(int(child)) == "Z":
                continue
            if command[0].endswith("nats-server"):
                found["nats-server"] = int(child)
            elif command[0].endswith("postgres"):
                found["postgres"] = int(child)
            elif "ledger-writer" in command:
                found["ledger-writer"] = int(child)
            elif "serve" in command:
                # A node being killed can lose its memory between the two reads: its cmdline
                # read, its environ then empty, and not yet a zombie. It is gone; skip it.
                node = next((e for e in environ if e.startswith(b"BLO_NODE_ID=")), None)
                if node is not None:
                    found[node.partition(b"=")[2].decode()] = int(child)
    return found


def state(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return None


async def serving(client: httpx.AsyncClient, credentials: dict[str, Any]) -> bool:
    """Every node ready, and an alert posted on KG is in TJ's feed and in the ledger."""
    for node in credentials["nodes"].values():
        try:
            if (await client.get(node["url"] + "/readyz")).status_code != 200:
                return False
        except httpx.HTTPError:
            return False
    return True


async def delivered_and_ledgered(client: httpx.AsyncClient, credentials: dict[str, Any]) -> None:
    kg, tj = credentials["nodes"][KG], credentials["nodes"][TJ]
    response = await client.post(
        kg["url"] + "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers={
            "Authorization": f"Bearer {kg['terminal_token']}",
            "Idempotency-Key": str(uuid.uuid4()),
        },
    )
    assert response.status_code == 202, response.text
    alert_id = response.json()["alert_id"]
    deadline = time.monotonic() + BACK_WITHIN
    while True:
        feed = await client.get(
            tj["url"] + "/v1/alerts/" + alert_id,
            headers={"Authorization": f"Bearer {tj['analyst_token']}"},
        )
        entries = await client.get(
            kg["url"] + "/v1/ledger/entries",
            params={"alert_id": alert_id},
            headers={"Authorization": f"Bearer {credentials['auditor_token']}"},
        )
        types = {e["type"] for e in entries.json().get("entries", [])}
        if feed.status_code == 200 and "alert_shared" in types:
            return
        assert time.monotonic() < deadline, (feed.status_code, types)
        await asyncio.sleep(0.2)


async def test_each_child_killed_is_back_and_serving_within_10_s(demo: Demo) -> None:
    credentials = demo.start()
    assert demo.process is not None
    supervisor = demo.process.pid
    first = children(supervisor)
    assert set(first) >= {"nats-server", "postgres", "ledger-writer", KG, TJ}, first
    timings: dict[str, float] = {}
    async with httpx.AsyncClient(timeout=5.0, verify=client_tls(credentials)) as client:
        for name in ["nats-server", "postgres", "ledger-writer", KG, TJ]:
            old = children(supervisor)[name]
            os.kill(old, signal.SIGKILL)
            killed = time.monotonic()
            while True:
                now = children(supervisor)
                back = name in now and now[name] != old
                if back and state(old) is None and await serving(client, credentials):
                    break
                assert time.monotonic() - killed < BACK_WITHIN, (name, now, state(old))
                await asyncio.sleep(0.1)
            timings[name] = round(time.monotonic() - killed, 1)
            await delivered_and_ledgered(client, credentials)
    print(f"\nrestarted within (s): {timings}", flush=True)
    output = demo.output.read_text()
    for name in timings:
        assert f"{name} exited" in output
        assert f"{name} restarted" in output

    everything = children(supervisor)
    assert demo.interrupt() == 0
    for pid in everything.values():
        assert state(pid) in (None, "Z"), pid
