"""The database cost the lifecycle adds per alert, against the inbox write every alert already
pays, measured in the same run on an embedded Postgres (docs/retention.md).

Run alone: ``python -m bench.retention_db [--n 500]``. Sequential, one transaction each, as the
accept and delivery paths do them, the three writes interleaved:

- baseline: ``SqlInbox.add`` of an alert (the inbox row, with its feed position);
- origin: the same with an origin row for the vault (``kept``: the same call and transaction),
  what a node stores when it accepts an alert whose nominal block goes to another agency;
- recipient: the same with a sealed part, what a node stores when it receives one;
- read: ``SqlRetentionStore.many`` for a page of 100 (the extra read of a feed page).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

from blo_exchange.crypto.retention import SealedNominal
from blo_exchange.db.engine import create_engine, migrate, session_factory
from blo_exchange.db.node_store import SqlInbox
from blo_exchange.db.retention_store import SqlRetentionStore
from blo_exchange.embedded import PostgresServer
from blo_exchange.services.ports import InboxItem
from blo_exchange.services.retention import RetainedNominal

NODE, AGENCY = "blo-karamyk-tj", "tj-drug-control-agency"
NOW = datetime(2026, 12, 5, tzinfo=UTC)


async def run(url: str, n: int) -> dict[str, float]:
    await migrate(url)
    engine = create_engine(url, pool_size=2)
    sessions = session_factory(engine)
    inbox, store = SqlInbox(sessions), SqlRetentionStore(sessions)
    envelope = os.urandom(6000)
    ids = [str(uuid.uuid4()) for _ in range(n)]

    def item(alert_id: str, seq: int) -> InboxItem:
        return InboxItem(
            NODE,
            alert_id,
            AGENCY,
            "kg-border-service",
            "blo-karamyk-kg",
            "KG-TJ",
            "seizure",
            "AMBER",
            NOW,
            seq,
            envelope,
            "0" * 64,
        )

    def row(alert_id: str, role: str) -> RetainedNominal:
        return RetainedNominal(
            NODE,
            alert_id,
            role,
            AGENCY,
            "kg-border-service",
            "KG-TJ",
            "seizure",
            "mou-kg-tj-2026",
            ("mou-kg-tj-2026",),
            "0" * 64,
            NOW,
            NOW,
            NOW,
        )

    sealed = SealedNominal(date(2027, 1, 4), os.urandom(60), os.urandom(700))
    timings = dict.fromkeys(("baseline_inbox_add_ms", "origin_add_ms", "recipient_add_ms"), 0.0)
    origins = [str(uuid.uuid4()) for _ in range(n)]
    recipients = [str(uuid.uuid4()) for _ in range(n)]
    try:
        # Interleaved, one of each in turn: the machine's noise falls on all three alike.
        for seq, (alert_id, own, received) in enumerate(zip(ids, origins, recipients, strict=True)):
            kept = replace(row(received, "recipient"), sealed=sealed)
            for name, write in (
                ("baseline_inbox_add_ms", inbox.add(item(alert_id, 3 * seq))),
                ("origin_add_ms", inbox.add(item(own, 3 * seq + 1), kept=row(own, "origin"))),
                ("recipient_add_ms", inbox.add(item(received, 3 * seq + 2), kept=kept)),
            ):
                started = time.perf_counter()
                await write
                timings[name] += (time.perf_counter() - started) / n * 1e3
        pages = [recipients[i : i + 100] for i in range(0, n, 100)]
        started = time.perf_counter()
        for page in pages:
            await store.many(NODE, page)
        timings["page_read_ms"] = (time.perf_counter() - started) / len(pages) * 1e3
    finally:
        await engine.dispose()
    base = timings["baseline_inbox_add_ms"]
    result = {k: round(v, 3) for k, v in timings.items()}
    for name in ("origin_add_ms", "recipient_add_ms"):
        result[name.replace("_ms", "_ratio")] = round(timings[name] / base, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        root = Path(tmp)
        root.chmod(0o711)  # the postgres system user must traverse it when we run as root
        with PostgresServer(root / "postgres" / "data") as postgres:
            url = postgres.create_database("bench").replace(
                "postgresql://", "postgresql+asyncpg://", 1
            )
            print(json.dumps({"n": args.n, **asyncio.run(run(url, args.n))}, indent=2))


if __name__ == "__main__":
    main()
