"""``make bench-ledger``: the Merkle ledger's append throughput and proof latency.

    python -m bench.ledger_log [--sizes 10000,100000,1000000] [--batch 1000]
                               [--out bench/ledger-results.json]

A fresh embedded Postgres. The ledger store appends batches of realistic ``alert_shared``
entries, each batch in one transaction, the way the ledger writer does. A checkpointer signs a
checkpoint every second meanwhile. At each size it times inclusion and consistency proofs, the
way the API serves them: one query for the O(log n) stored nodes a proof needs. Each proof is
checked against the signed root.

Trust on (issue 12): the store appends through the writer's journal (its own state file, one
fsync per batch, new nodes built on its own compact range), the checkpointer signs only what
the journal holds, and three witnesses (one per agency) check and cosign every checkpoint
meanwhile. At each size it also times how fast a serving node verifies the new entries against
the signed checkpoint (``ledger.answers.VerifiedLedger``) and reports the storage per entry.

Baseline, measured in the same run on the same server: the same rows inserted with the same
statement shape into a copy of ``ledger_entries`` (same indexes, no triggers) without any Merkle
work, once by INSERT and once by ``COPY`` (as the store appends since issue 14). The ratios say
what the tree costs on top of storing the rows at all. Goals (issue 3):
at least 10,000 appended entries/s, and an inclusion proof p99 under 20 ms at 1M entries.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import shutil
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import text

from blo_exchange.crypto.envelope import RecipientKey, redact_all, seal
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.crypto.note import Cosigner
from blo_exchange.db.engine import create_engine, migrate, session_factory
from blo_exchange.db.ledger_store import SqlLedgerStore
from blo_exchange.embedded import PostgresServer
from blo_exchange.ledger import merkle
from blo_exchange.ledger.answers import VerifiedLedger
from blo_exchange.ledger.checkpoints import Checkpointer, note_signer
from blo_exchange.ledger.entries import build_entry
from blo_exchange.ledger.journal import WriterJournal
from blo_exchange.ledger.witness import Witness, witness_name
from blo_exchange.services.ports import NewLedgerEntry

ORIGIN = "bench.blo-exchange.example/ledger"
PROOFS = 200
AGENCIES = ("kg-border-service", "tj-drug-control-agency", "uz-customs-committee")


def log(message: str) -> None:
    print(f"[bench-ledger {time.strftime('%H:%M:%S')}] {message}", flush=True)


def sample_record() -> bytes:
    """A real envelope (ML-KEM-768 + X25519, two recipients) as the ledger keeps it: every
    ciphertext removed. Each benchmark entry carries one of this size."""
    suite = HpkeSuite.MLKEM768_X25519
    recipients = [
        RecipientKey(agency, KemPrivateKey.generate(suite).public_key(), ("case",))
        for agency in AGENCIES[:2]
    ]
    header = {
        "alert_id": str(uuid.uuid4()),
        "kind": "seizure",
        "border_pair": "KG-TJ",
        "origin_node": "blo-karamyk-kg",
        "origin_agency": AGENCIES[0],
        "suite": suite.value,
        "created_at": "2026-11-28T06:40:00.000Z",
        "tlp": "AMBER",
        "crossing_point": "KG-KARAMYK",
        "agreement_ids": ["mou-kg-tj-2026"],
    }
    raw = seal(header, {"case": b"x" * 600}, recipients, SigningKey.generate())
    return redact_all(raw)


RECORD = sample_record()


def entries(count: int, rng: random.Random) -> list[NewLedgerEntry]:
    now = datetime.now(UTC)
    made = []
    for _ in range(count):
        alert_id = str(uuid.UUID(int=rng.getrandbits(128)))
        origin = rng.choice(AGENCIES)
        made.append(
            build_entry(
                event_id=f"alert_shared:{alert_id}",
                type="alert_shared",
                occurred_at=now,
                alert_id=alert_id,
                actor_node="blo-karamyk-kg",
                actor_agency=origin,
                recipients=sorted({origin, rng.choice(AGENCIES)}),
                border_pair="KG-TJ",
                kind=rng.choice(("seizure", "risk")),
                agreement_ids=["mou-kg-tj-2026"],
                envelope_sha256=f"{rng.getrandbits(256):064x}",
                detail={"tlp": "AMBER", "crossing_point": "KG-KARAMYK"},
                record=RECORD,
            )
        )
    return made


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000

    return {"p50_ms": round(at(0.50), 3), "p99_ms": round(at(0.99), 3), "max_ms": round(at(1.0), 3)}


async def baseline(
    sessions: Any, batch: int, total: int, rng: random.Random, *, copy: bool = False
) -> dict[str, Any]:
    """Plain inserts of the same rows into a twin table with the same indexes, no tree; with
    ``copy``, the same rows by ``COPY`` (binary) into another twin, as the store now appends."""
    table = "bench_raw_copy" if copy else "bench_raw"
    async with sessions.begin() as session:
        await session.execute(
            text(f"CREATE TABLE {table} (LIKE ledger_entries INCLUDING DEFAULTS INCLUDING INDEXES)")
        )
    insert = text(
        "INSERT INTO bench_raw (idx, event_id, type, alert_id, actor_node, actor_agency, "
        "recipients, border_pair, kind, occurred_at, leaf_input, leaf_hash) VALUES (:idx, "
        ":event_id, :type, :alert_id, :actor_node, :actor_agency, :recipients, :border_pair, "
        ":kind, :occurred_at, :leaf_input, :leaf_hash)"
    )
    done, seconds = 0, 0.0
    while done < total:
        rows = [
            {
                "idx": done + i,
                "event_id": e.event_id,
                "type": e.type,
                "alert_id": e.alert_id,
                "actor_node": e.actor_node,
                "actor_agency": e.actor_agency,
                "recipients": list(e.recipients),
                "border_pair": e.border_pair,
                "kind": e.kind,
                "occurred_at": e.occurred_at,
                "leaf_input": e.leaf_input,
                "leaf_hash": merkle.leaf_hash(e.leaf_input),
            }
            for i, e in enumerate(entries(batch, rng))
        ]
        start = time.perf_counter()
        async with sessions.begin() as session:
            if copy:
                raw = await (await session.connection()).get_raw_connection()
                await raw.driver_connection.copy_records_to_table(
                    table, records=[tuple(r.values()) for r in rows], columns=list(rows[0])
                )
            else:
                await session.execute(insert, rows)
        seconds += time.perf_counter() - start
        done += batch
    return {"rows": done, "rows_per_s": round(done / seconds)}


async def storage(sessions: Any, size: int) -> dict[str, Any]:
    """Bytes on disk per entry: its row (with indexes) and its share of the tree nodes."""
    async with sessions() as session:
        row = (
            await session.execute(
                text(
                    "SELECT pg_total_relation_size('ledger_entries'), "
                    "pg_total_relation_size('ledger_tree_nodes'), "
                    "(SELECT avg(length(leaf_input)) FROM ledger_entries)"
                )
            )
        ).one()
    entries_bytes, nodes_bytes, leaf = int(row[0]), int(row[1]), float(row[2] or 0)
    return {
        "bytes_per_entry": round((entries_bytes + nodes_bytes) / size),
        "entry_row_bytes": round(entries_bytes / size),
        "tree_node_bytes": round(nodes_bytes / size),
        "leaf_input_bytes": round(leaf),
    }


async def leaf_hash_at(sessions: Any, index: int) -> bytes:
    async with sessions() as session:
        value = await session.scalar(
            text("SELECT leaf_hash FROM ledger_entries WHERE idx = :i"), {"i": index}
        )
    return bytes(value)


async def proofs(
    store: SqlLedgerStore, sessions: Any, size: int, rng: random.Random
) -> dict[str, Any]:
    root = await store.root_at(size)
    inclusion: list[float] = []
    for index in rng.sample(range(size), min(PROOFS, size)):
        start = time.perf_counter()
        path = await store.inclusion_proof(index, size)
        inclusion.append(time.perf_counter() - start)
        merkle.verify_inclusion(await leaf_hash_at(sessions, index), index, size, path, root)
    consistency: list[float] = []
    for _ in range(50):
        first = rng.randrange(1, size + 1)
        start = time.perf_counter()
        path = await store.consistency_proof(first, size)
        consistency.append(time.perf_counter() - start)
        merkle.verify_consistency(first, size, await store.root_at(first), root, path)
    return {"inclusion": percentiles(inclusion), "consistency": percentiles(consistency)}


async def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    sizes = sorted(int(s) for s in args.sizes.split(","))
    rng = random.Random(1)
    postgres = PostgresServer(work / "postgres" / "data")
    postgres.data_dir.parent.mkdir(mode=0o711)
    postgres.start()
    engine = None
    try:
        url = postgres.create_database("bench_ledger")
        await migrate(url)
        engine = create_engine(url, pool_size=2)
        sessions = session_factory(engine)
        store = SqlLedgerStore(sessions)
        log(f"baseline: plain inserts of {args.baseline_rows} rows")
        results: dict[str, Any] = {
            "baseline": await baseline(sessions, args.batch, args.baseline_rows, rng)
        }
        log(f"baseline: plain COPY of {args.baseline_rows} rows")
        results["baseline_copy"] = await baseline(
            sessions, args.batch, args.baseline_rows, rng, copy=True
        )
        signer = note_signer(ORIGIN, SigningKey.generate())
        journal = None if args.plain else WriterJournal(origin=ORIGIN, path=work / "ledger.state")
        checkpointer = Checkpointer(
            store=store, signer=signer, origin=ORIGIN, publisher=None, journal=journal
        )

        async def log_keys() -> list[Any]:
            return [signer.verifier()]

        witnesses = [
            Witness(
                origin=ORIGIN,
                cosigner=Cosigner.from_signing_key(
                    witness_name(f"bench-{a}"), SigningKey.generate()
                ),
                store=store,
                log_keys=log_keys,
                clock=lambda: datetime.now(UTC),
                state_path=work / f"witness-{a}.state",
            )
            for a in ([] if args.plain else AGENCIES)
        ]
        checkpoints, cosignatures = 0, 0
        cosign_seconds: list[float] = []

        async def every_second() -> None:
            nonlocal checkpoints, cosignatures
            while True:
                await asyncio.sleep(1.0)
                if await checkpointer.cut() is not None:
                    checkpoints += 1
                for witness in witnesses:
                    start = time.perf_counter()
                    if await witness.observe() is not None:
                        cosignatures += 1
                        cosign_seconds.append(time.perf_counter() - start)

        verified = VerifiedLedger(store)
        ticker = asyncio.create_task(every_second())
        appended, append_seconds, build_seconds = 0, 0.0, 0.0
        milestones = []
        try:
            for target in sizes:
                log(f"appending up to {target} entries")
                while appended < target:
                    start = time.perf_counter()
                    batch = entries(min(args.batch, target - appended), rng)
                    build_seconds += time.perf_counter() - start
                    start = time.perf_counter()
                    if journal is None:
                        appended += len(await store.append(batch))
                    else:
                        async with journal.lock:
                            appended += len(await store.append(batch, journal))
                    append_seconds += time.perf_counter() - start
                await checkpointer.cut()
                latest = await store.latest_checkpoint()
                assert latest is not None
                assert latest.tree_size == appended
                measured = await proofs(store, sessions, appended, rng)
                start = time.perf_counter()
                before = verified.size
                await verified.catch_up(latest)
                verify_seconds = time.perf_counter() - start
                milestones.append(
                    {
                        "size": appended,
                        "appends_per_s_so_far": round(appended / append_seconds),
                        **measured,
                        "answers_verified_per_s": round(
                            (appended - before) / max(verify_seconds, 1e-9)
                        ),
                        **await storage(sessions, appended),
                    }
                )
                log(f"{appended}: {milestones[-1]}")
        finally:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        rate = appended / append_seconds
        results.update(
            appended=appended,
            batch=args.batch,
            appends_per_s=round(rate),
            entry_build_per_s=round(appended / build_seconds),
            checkpoints_signed=checkpoints,
            cosignatures=cosignatures,
            witnesses=len(witnesses),
            plain=args.plain,
            cosign=percentiles(cosign_seconds) if cosign_seconds else None,
            ratio_to_plain_inserts=round(rate / results["baseline"]["rows_per_s"], 3),
            ratio_to_plain_copy=round(rate / results["baseline_copy"]["rows_per_s"], 3),
            milestones=milestones,
        )
        return results
    finally:
        if engine is not None:
            await engine.dispose()
        postgres.stop()


def table(results: dict[str, Any]) -> str:
    base = results["baseline"]["rows_per_s"]
    lines = [
        f"append: {results['appends_per_s']} entries/s in batches of {results['batch']} "
        f"(goal >= 10000), {results['checkpoints_signed']} checkpoints signed meanwhile",
        f"writer journal {'off' if results['plain'] else 'on (fsync per batch)'}; "
        f"{results['witnesses']} witnesses added "
        f"{results['cosignatures']} cosignatures, check+cosign "
        f"{(results['cosign'] or {}).get('p50_ms')} / {(results['cosign'] or {}).get('p99_ms')} "
        "ms p50 / p99",
        f"baseline: plain inserts of the same rows {base} rows/s -> ratio "
        f"{results['ratio_to_plain_inserts']}; plain COPY of the same rows "
        f"{results['baseline_copy']['rows_per_s']} rows/s -> ratio "
        f"{results['ratio_to_plain_copy']}",
        f"entries built (canonical JSON) at {results['entry_build_per_s']}/s, outside the timing",
        "size       inclusion p50 / p99 ms     consistency p50 / p99 ms   verified/s  "
        "bytes/entry (row + nodes; leaf_input)",
    ]
    for m in results["milestones"]:
        inc, con = m["inclusion"], m["consistency"]
        lines.append(
            f"{m['size']:<10} {inc['p50_ms']:>8} / {inc['p99_ms']:<14} "
            f"{con['p50_ms']:>8} / {con['p99_ms']:<12} {m['answers_verified_per_s']:>10}  "
            f"{m['bytes_per_entry']} ({m['entry_row_bytes']} + {m['tree_node_bytes']}; "
            f"{m['leaf_input_bytes']})"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    parser.add_argument(
        "--plain", action="store_true", help="no writer journal, no witnesses (issue 3's setup)"
    )
    parser.add_argument("--out", type=Path, default=Path("bench/ledger-results.json"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="blo-bench-ledger-"))
    work.chmod(0o711)
    started = time.monotonic()
    try:
        results = asyncio.run(run(args, work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(table(results))
    log(f"done in {results['seconds']} s; {args.out}")


if __name__ == "__main__":
    main()
