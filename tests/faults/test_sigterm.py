"""SIGTERM (a deploy, a reboot) under load: the work in hand finishes before the process exits.

A node stops taking connections, answers the requests it had started (no idempotency key is
left half-done, in ``pending``) and exits 0; the ledger writer commits and acks the batch in
hand and exits 0, so nothing waits for JetStream's ack timeout to be redelivered.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time

import pytest

from tests.faults.checker import check
from tests.faults.harness import KG, LEDGER_WRITER, FaultSystem, Terminal, run_load

ACK_WAIT = 30.0  # the consumers' ack_wait: what a batch cut short would wait for


@pytest.mark.parametrize("name", [KG, LEDGER_WRITER])
async def test_sigterm_lets_in_flight_work_finish(fault_system: FaultSystem, name: str) -> None:
    await fault_system.heal()
    kg = fault_system.node(KG)
    prefix = f"sigterm-{name}-{int(time.time())}"
    seen: dict[str, object] = {}

    async def sigterm() -> None:
        seen["sent"] = time.monotonic()
        code = await asyncio.to_thread(fault_system.processes.terminate, name, 30.0)
        seen["exit"], seen["exited"] = code, time.monotonic()
        rows = await fault_system.sql(
            "SELECT key FROM idempotency_keys WHERE key LIKE :p AND state = 'pending' "
            "AND updated_at > '1971-01-01'",
            database=kg["agency"],  # the idempotency records are in KG's agency's database
            p=prefix + "%",
        )
        seen["cut"] = [r[0] for r in rows]
        await fault_system.restart(name)

    terminal = Terminal(kg["url"], kg["terminal_token"], settle=60.0)
    load = await run_load(terminal, prefix, duration=4.0, workers=3, fault=sigterm)
    started = time.monotonic()
    while True:
        verdict = check(
            load.acknowledged, await fault_system.feed(prefix), await fault_system.shared()
        )
        if verdict.ok or time.monotonic() - started > ACK_WAIT + 15:
            break
        await asyncio.sleep(0.5)
    settled_in = time.monotonic() - started
    sent, exited = float(str(seen["sent"])), float(str(seen["exited"]))
    report = {
        "scenario": f"sigterm-{name}",
        **verdict.summary(),
        "exit": seen["exit"],
        "stopped_in": round(exited - sent, 1),
        "answered_after_sigterm": sum(
            1 for t in load.acknowledged_at.values() if sent < t < exited
        ),
        "retried_for": load.errors,
        "settle_seconds": round(settled_in, 1),
    }
    print("\nFAULTS " + json.dumps(report), flush=True)
    # uvicorn re-raises the signal it handled once its graceful shutdown is over: -15 is a
    # clean exit there; the ledger writer returns 0.
    assert seen["exit"] == (-signal.SIGTERM if name == KG else 0)
    if name == KG:
        assert seen["cut"] == [], "requests cut mid-way by SIGTERM"
    assert verdict.ok, verdict
    # Nothing had to wait for an ack timeout: the batches in hand were acked before exit.
    assert settled_in < ACK_WAIT / 2
