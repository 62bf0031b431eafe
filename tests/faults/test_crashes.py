"""kill -9 of each moving part under a steady load of posts; then the set checker's verdict.

For every alert the terminal saw acknowledged (202): it is in the TJ analyst's feed once, and in
the ledger as exactly one ``alert_shared`` entry — whatever crashed in between.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import pytest

from tests.faults.checker import Verdict, check
from tests.faults.conftest import LONG
from tests.faults.harness import KG, LEDGER_WRITER, TJ, FaultSystem, LoadResult, Terminal, run_load

DURATION = 60.0 if LONG else 5.0
WORKERS = 4 if LONG else 3
DOWN_FOR = 3.0 if LONG else 1.5
ROUNDS = 4 if LONG else 1  # faults per scenario
SETTLE = 120.0 if LONG else 45.0

Fault = Callable[[FaultSystem], Awaitable[None]]


async def kill_nats(system: FaultSystem) -> None:
    system.nats.kill()
    await asyncio.sleep(DOWN_FOR)
    await asyncio.to_thread(system.nats.start)


async def kill_postgres(system: FaultSystem) -> None:
    system.postgres.kill()
    await asyncio.sleep(DOWN_FOR)
    await asyncio.to_thread(system.postgres.start)


async def kill_nodes(system: FaultSystem) -> None:
    # The origin node mid-request (the terminal retries with the same key), then the recipient.
    for name in (KG, TJ):
        system.processes.kill(name)
        await asyncio.sleep(DOWN_FOR)
        await system.restart(name)


async def kill_ledger_writer(system: FaultSystem) -> None:
    system.processes.kill(LEDGER_WRITER)
    await asyncio.sleep(DOWN_FOR)
    await system.restart(LEDGER_WRITER)


SCENARIOS: dict[str, Fault] = {
    "nats": kill_nats,
    "postgres": kill_postgres,
    "node": kill_nodes,
    "ledger-writer": kill_ledger_writer,
}


async def settle(system: FaultSystem, prefix: str, load: LoadResult) -> tuple[Verdict, float]:
    """Poll until every acknowledged alert is delivered and ledgered, or SETTLE runs out."""
    started = time.monotonic()
    while True:
        verdict = check(load.acknowledged, await system.feed(prefix), await system.shared())
        waited = time.monotonic() - started
        if verdict.ok or verdict.duplicates or waited > SETTLE:
            return verdict, waited
        await asyncio.sleep(1.0)


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_nothing_acknowledged_is_lost_or_duplicated(
    fault_system: FaultSystem, scenario: str
) -> None:
    await fault_system.heal()
    kg = fault_system.node(KG)
    terminal = Terminal(kg["url"], kg["terminal_token"], settle=SETTLE)
    fault = SCENARIOS[scenario]
    prefix = f"{scenario}-{int(time.time())}"

    async def faults() -> None:
        for _ in range(ROUNDS):
            await fault(fault_system)
            await asyncio.sleep(DURATION / (ROUNDS + 1) - DOWN_FOR)

    started = time.monotonic()
    load = await run_load(terminal, prefix, duration=DURATION, workers=WORKERS, fault=faults)
    loaded = time.monotonic() - started
    verdict, waited = await settle(fault_system, prefix, load)
    report = {
        "scenario": scenario,
        **verdict.summary(),
        "refused": len(load.refused),
        "gave_up": len(load.gave_up),
        "attempts": load.attempts,
        "retried_for": load.errors,
        "load_seconds": round(loaded, 1),
        "settle_seconds": round(waited, 1),
    }
    print("\nFAULTS " + json.dumps(report), flush=True)
    assert not load.refused, load.refused
    assert not load.gave_up, load.gave_up
    assert verdict.acknowledged > 0
    assert not verdict.duplicates, verdict.duplicates
    assert not verdict.lost, sorted(verdict.lost)
    assert not verdict.lost_in_ledger, sorted(verdict.lost_in_ledger)
