"""The load generator's queue task: a backlog of sealed alerts put straight on JetStream.

``{"type": "queue", "count": 10000, "node_id", "key_dir", "database_url", "nats_url", "bulk",
"own_copies_database_url"?}``
seals ``count`` real alerts as ``node_id`` would (its signing key, the recipients' current keys,
the demo's KG-TJ agreement) *before* posting starts, then publishes them to JetStream as fast as
it takes them (``concurrency`` in flight), on the bulk lane with ``bulk``. What a partner node
then has to drain is a queue, as after an office flushes a day of reports or a site's link comes
back: the measure of delivery alone, with the accept path out of the way. Each alert counts as
posted at its JetStream ack (its stream sequence is what the SSE event carries).

With ``own_copies_database_url`` (the origin's agency database), the origin's own copies are
stored first, as its ingest stored them when it accepted them (``_store_own_copies``).

The sealing CPU is reported apart (``seal_cpu_seconds``): it happens before the clock starts
(``prepare_queue``, before any task of the load generator starts), but in this process.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.loadgen_core import Shared, process_cpu, record_event
from blo_exchange.bus.connection import connect
from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import RecipientKey, envelope_sha256
from blo_exchange.crypto.keyfiles import load_node_keys
from blo_exchange.crypto.keys import HpkeSuite
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.db.node_store import SqlInbox
from blo_exchange.db.search_store import SqlSearchStore
from blo_exchange.domain.alerts import ALERT_SUBMISSION_ADAPTER, SeizureSubmission
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import new_alert_id, parse_time
from blo_exchange.domain.policy import resolve_recipients
from blo_exchange.domain.subjects import alert_subject
from blo_exchange.services.ports import InboxItem
from blo_exchange.services.sealing import AlertSealer

SUITE = HpkeSuite("MLKEM768-X25519/HKDF-SHA256/AES-256-GCM")


async def _seal(task: dict[str, Any]) -> list[tuple[str, bytes]]:
    """(alert id, envelope) for ``count`` seizures from ``node_id``, sealed now."""
    engine = create_engine(task["database_url"], pool_size=1)
    try:
        directory = SqlDirectory(session_factory(engine))
        node = await directory.node(task["node_id"])
        keys = load_node_keys(Path(task["key_dir"]))
        sealer = AlertSealer(
            node=node,
            signer=keys.signing,
            suite=SUITE,
            directory=directory,
            publisher=None,  # type: ignore[arg-type]
        )
        submission = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_SEIZURE)
        assert isinstance(submission, SeizureSubmission)
        now = datetime.now(UTC)
        recipients = resolve_recipients(
            await directory.agreements(),
            origin_agency=node.agency_id,
            border_pair=submission.border_pair,
            kind=submission.kind,
            tlp=submission.tlp,
            at=now,
        )
        kem = await sealer.keys_for(recipients.agencies)
    finally:
        await engine.dispose()
    parts = {"case": canonical_json(submission.case_document())}
    nominal = submission.nominal_document()
    if nominal is not None:
        parts["nominal"] = canonical_json(nominal)
    sealed_to = [
        RecipientKey(
            agency=agency,
            key=key,
            parts=("case", "nominal")
            if nominal is not None and agency in recipients.nominal_agencies
            else ("case",),
        )
        for agency, key in kem.items()
    ]
    out = []
    for _ in range(int(task["count"])):
        alert_id = new_alert_id(now)
        header = sealer.header(
            alert_id=alert_id,
            kind=submission.kind,
            border_pair=submission.border_pair,
            crossing_point=submission.crossing_point,
            created_at=datetime.now(UTC),
            tlp=submission.tlp.value,
            handling=submission.handling.model_dump(mode="json"),
            grading=None,
            agreement_ids=recipients.agreement_ids,
            supersedes=None,
        )
        out.append((alert_id, sealer.seal(header, parts, sealed_to)))
    return out


async def prepare_queue(task: dict[str, Any]) -> dict[str, Any]:
    """Everything before the clock: the sealed alerts (and the origin's own copies)."""
    cpu0 = process_cpu()
    envelopes = await _seal(task)
    seal_cpu = process_cpu() - cpu0
    own = await _store_own_copies(task, envelopes) if task.get("own_copies_database_url") else None
    return {"envelopes": envelopes, "seal_cpu": seal_cpu, "own": own}


async def run_queue(
    task: dict[str, Any], prepared: dict[str, Any], shared: Shared
) -> dict[str, Any]:
    envelopes: list[tuple[str, bytes]] = prepared["envelopes"]
    seal_cpu, own = prepared["seal_cpu"], prepared["own"]
    bulk = bool(task.get("bulk", False))
    subject = alert_subject("KG-TJ", "seizure", **({"bulk": True} if bulk else {}))
    bus = await connect(task["nats_url"], name="bench-queue")
    room = asyncio.Semaphore(int(task.get("concurrency", 64)))
    errors: list[str] = []
    name = task.get("name", "queue")

    async def one(alert_id: str, raw: bytes) -> None:
        async with room:
            t = time.monotonic()
            try:
                ack = await bus.publish(subject, raw, msg_id=alert_id)
            except Exception as exc:  # a bench run reports what failed and goes on
                errors.append(type(exc).__name__)
                return
            record_event(shared, ack.seq, alert_id, time.monotonic(), name, t)

    await shared.posting_started.wait()
    start = time.monotonic()
    try:
        await asyncio.gather(*(one(alert_id, raw) for alert_id, raw in envelopes))
    finally:
        await bus.close()
    elapsed = time.monotonic() - start
    shared.poster_finished()
    return {
        "type": "queue",
        "alerts": len(envelopes),
        "queued": len(envelopes) - len(errors),
        "lane": "bulk" if bulk else "live",
        "publish_seconds": elapsed,
        "seal_cpu_seconds": seal_cpu,
        "errors": errors[:20],
        "started": start - shared.t0,
        "own_copies_stored": own,
    }


async def _store_own_copies(task: dict[str, Any], envelopes: list[tuple[str, bytes]]) -> int:
    """The origin's own copy of each queued alert, stored in its inbox before the clock starts,
    as its ingest stored each one when it accepted it; then waits (before the clock too) until
    the origin's search index has taken them in, as it had long before a real backlog drains.
    Without them the origin node would meet 10,000 alerts of its own it never stored, and
    verify and store every one: a load no real backlog puts on its origin. Their stream
    position is not known before they are published, and nothing measured reads it: 0."""
    engine = create_engine(task["own_copies_database_url"], pool_size=1)
    inbox = SqlInbox(session_factory(engine))
    stored = last = 0
    try:
        for start in range(0, len(envelopes), 500):
            items = []
            for _, raw in envelopes[start : start + 500]:
                header = json.loads(raw)["header"]
                items.append(
                    InboxItem(
                        node_id=str(task["node_id"]),
                        alert_id=header["alert_id"],
                        agency_id=header["origin_agency"],
                        origin_agency=header["origin_agency"],
                        origin_node=header["origin_node"],
                        border_pair=header["border_pair"],
                        kind=header["kind"],
                        tlp=header["tlp"],
                        created_at=parse_time(header["created_at"]),
                        stream_seq=0,
                        envelope=raw,
                        envelope_sha256=envelope_sha256(raw),
                    )
                )
            kept = await inbox.add_batch(items)
            stored += sum(s is not None for s in kept)
            last = max([last, *(s.feed_seq for s in kept if s is not None)])
        index, agency = SqlSearchStore(engine), items[0].agency_id
        deadline = time.monotonic() + 300
        while await index.indexed_up_to(str(task["node_id"]), agency) < last:
            if time.monotonic() > deadline:
                raise RuntimeError("the origin's search index did not take in its own copies")
            await asyncio.sleep(0.5)
    finally:
        await engine.dispose()
    return stored
