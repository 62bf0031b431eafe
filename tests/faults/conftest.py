"""The fault-injection suite: real processes, killed and restarted while a terminal posts.

``make test`` runs the short form; ``make faults`` sets ``BLO_FAULTS_LONG=1`` for more alerts,
longer load and repeated faults.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.harness import FaultSystem

_HERE = Path(__file__).parent
LONG = os.environ.get("BLO_FAULTS_LONG", "") not in ("", "0")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "faults: kills and restarts real processes under load")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_HERE):
            item.add_marker(pytest.mark.faults)


@pytest.fixture(scope="session")
def fault_system(runtime_dir: Path) -> Iterator[FaultSystem]:
    """One system for the fault suite; each test heals what an earlier one left down."""
    base = Path(os.path.realpath(runtime_dir)) / f"faults-{uuid.uuid4().hex[:8]}"
    # A short takeover of a killed node's pending request keeps the short form short;
    # production keeps the 30 s default. No rate limit: the load is meant to stress.
    system = FaultSystem(base, env={"BLO_STALE_IDEMPOTENCY_SECONDS": "3", "BLO_RATE_LIMIT": "0"})
    try:
        asyncio.run(system.start())
        yield system
    finally:
        system.stop()
