"""The ledger writer is trusted for order only, and only for what it appended itself.

Attacks tried as the issue describes them, on a running deployment (real Postgres and NATS, the
superuser's database URL): a forged row inserted at the next index, and a log truncated behind
the triggers to be regrown as a fork. The writer's own state file (``ledger.journal``) makes it
refuse both, logging CRITICAL with the index, and never sign a checkpoint covering them.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from blo_exchange.crypto.keys import SigningKey, load_signing_key
from blo_exchange.crypto.note import Cosigner, format_checkpoint, parse_checkpoint
from blo_exchange.crypto.receipt import sign_receipt
from blo_exchange.db.engine import create_engine
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger import merkle
from blo_exchange.ledger.checkpoints import note_signer
from blo_exchange.ledger.entries import build_entry
from blo_exchange.ledger.journal import LedgerForkError
from blo_exchange.ledger.records import receipt_fields
from tests.integration.pipeline import Deployment, deployment, eventually
from tests.integration.test_ledger_checkpoints import (
    KG,
    ORIGIN,
    get,
    settled_checkpoint,
    share,
    tamper,
    verify_cli,
)

TJ = "blo-karamyk-tj"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


def critical(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.CRITICAL]


async def forge_insert(
    database_url: str, *, as_writer_role: bool, index: int, alert_id: str
) -> None:
    """A feedback "seized" by the TJ node for a KG alert, inserted at ``index`` with its tree
    nodes while holding the writer's advisory lock; triggers on (a plain INSERT)."""
    entry = build_entry(
        event_id="receipt:forged-feedback",
        type="feedback",
        occurred_at=utc_now(),
        alert_id=alert_id,
        actor_node=TJ,
        actor_agency="tj-drug-control-agency",
        border_pair="KG-TJ",
        kind="seizure",
        detail={"outcome": "seized", "receipt_id": "forged-feedback"},
    )
    h = merkle.leaf_hash(entry.leaf_input)
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            if as_writer_role:
                await conn.execute(text("SET LOCAL ROLE blo_ledger_writer"))
            await conn.execute(text("SELECT pg_advisory_xact_lock(1651273548)"))
            rows = await conn.execute(text("SELECT level, idx, hash FROM ledger_tree_nodes"))
            stored = {(int(lv), int(ix)): bytes(hh) for lv, ix, hh in rows}
            nodes = merkle.append_many(index, [h], lambda lv, ix: stored[(lv, ix)])
            await conn.execute(
                text(
                    "INSERT INTO ledger_entries (idx, event_id, type, alert_id, actor_node, "
                    "actor_agency, recipients, border_pair, kind, occurred_at, leaf_input, "
                    "leaf_hash) VALUES (:idx, :event_id, :type, :alert_id, :actor_node, "
                    ":actor_agency, :recipients, :border_pair, :kind, :occurred_at, :leaf_input, "
                    ":leaf_hash)"
                ),
                {
                    "idx": index,
                    "event_id": entry.event_id,
                    "type": entry.type,
                    "alert_id": entry.alert_id,
                    "actor_node": entry.actor_node,
                    "actor_agency": entry.actor_agency,
                    "recipients": list(entry.recipients),
                    "border_pair": entry.border_pair,
                    "kind": entry.kind,
                    "occurred_at": entry.occurred_at,
                    "leaf_input": entry.leaf_input,
                    "leaf_hash": h,
                },
            )
            for lv, ix, hh in nodes:
                await conn.execute(
                    text("INSERT INTO ledger_tree_nodes (level, idx, hash) VALUES (:l, :i, :h)"),
                    {"l": lv, "i": ix, "h": hh},
                )
    finally:
        await engine.dispose()


async def test_a_forged_tail_insert_is_never_signed_and_is_named(
    deploy: Deployment, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    alert_id = await share(deploy)
    before = await settled_checkpoint(deploy)
    size = before["tree_size"]
    trust = tmp_path / "trust.json"
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    assert verify_cli(str(bundle), "--trust", str(trust))[0] == 0

    # A plain INSERT, even holding the writer's advisory lock, is refused: wrong database role.
    with pytest.raises(DBAPIError, match="only the ledger writer"):
        await forge_insert(database_url, as_writer_role=False, index=size, alert_id=alert_id)

    # With the writer's role (its database credentials stolen) the row gets in, at the next
    # index, before the writer appends again: the writer never signs it, and stops.
    writer = await deploy.stop_ledger_writer()
    latest = await deploy.writer_host.ledger.latest_checkpoint()
    assert latest is not None
    forged_at = await deploy.writer_host.ledger.size()
    await forge_insert(database_url, as_writer_role=True, index=forged_at, alert_id=alert_id)
    writer = deploy.start_ledger_writer()
    with pytest.raises(LedgerForkError, match=f"entry {forged_at} was not appended"):
        await writer.checkpointer.cut()
    assert any(f"entry {forged_at} was not appended by this writer" in m for m in critical(caplog))
    await share_unrecorded(deploy)
    await asyncio.sleep(2.5)  # more than two checkpoint ticks
    checkpoints = await deploy.writer_host.ledger.checkpoints()
    assert max(c.tree_size for c in checkpoints) == forged_at
    assert await deploy.writer_host.ledger.size() == forged_at + 1  # nothing appended after it

    # The verifier accepts the signed log, and names the row no checkpoint covers.
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    code, output = verify_cli(str(bundle), "--trust", str(trust))
    assert code == 0, output
    assert f"OK: {forged_at} entries" in output
    assert f"covered by no signed checkpoint and not verified: {forged_at}" in output


async def share_unrecorded(deploy: Deployment) -> None:
    """Share an alert without waiting for the ledger (the writer is stopped)."""
    import uuid

    from blo_exchange.domain.examples import EXAMPLE_SEIZURE

    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text


async def test_a_truncate_and_regrow_fork_is_refused_by_the_writer_and_every_witness(
    deploy: Deployment, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await share(deploy)
    await share(deploy)
    writer = await deploy.stop_ledger_writer()
    await writer.checkpointer.cut()
    first = await settled_checkpoint(deploy)
    size = first["tree_size"]
    assert size > 5
    cut = size - 5
    store = deploy.writer_host.ledger

    async def all_cosigned() -> bool:
        lines = await store.cosignature_lines([size])
        return len(lines.get(size, [])) == len(deploy.runtimes)

    await eventually(all_cosigned, what="every witness's cosignature")

    # A superuser deletes the last 5 entries, their nodes and the checkpoints covering them.
    await tamper(
        database_url,
        f"DELETE FROM ledger_entries WHERE idx >= {cut}",
        f"DELETE FROM ledger_tree_nodes WHERE (idx + 1) * (1::bigint << level) > {cut}",
        f"DELETE FROM ledger_checkpoints WHERE tree_size > {cut}",
    )
    # The writer (restarted: it remembers what it appended in its state file) refuses to
    # append to or sign the shortened log, and says so at CRITICAL.
    writer = deploy.start_ledger_writer()
    with pytest.raises(LedgerForkError, match=f"entries from index {cut} were removed"):
        await writer.checkpointer.cut()
    assert any(f"entries from index {cut} were removed" in m for m in critical(caplog))
    await share_unrecorded(deploy)  # new entries would regrow the log at the deleted indexes
    await asyncio.sleep(2.5)
    assert await store.size() == cut  # nothing appended after the cut
    checkpoints = await store.checkpoints()
    assert max((c.tree_size for c in checkpoints), default=0) <= cut  # none signed again

    # Whoever holds the writer's key (a writer without its state file) signs the regrown log at
    # the same size with another root: every witness refuses it and publishes both checkpoints.
    key = load_signing_key(deploy.writer_host.settings.key_dir / "ledger.key")  # type: ignore[operator]
    fork_root = hashlib.sha256(b"the regrown log").digest()
    forged = note_signer(ORIGIN, key).sign(format_checkpoint(ORIGIN, size, fork_root))
    await tamper(
        database_url,
        "INSERT INTO ledger_checkpoints (tree_size, root_hash, note) "
        f"VALUES ({size}, '\\x{fork_root.hex()}'::bytea, '{forged}')",
    )

    async def flagged() -> list[dict[str, Any]] | None:
        evidence = await store.fork_evidence()
        return evidence if len(evidence) == len(deploy.runtimes) else None

    evidence = await eventually(flagged, what="fork evidence from every witness")
    assert {e["witness"] for e in evidence} == {f"{n}/witness" for n in deploy.runtimes}
    for e in evidence:
        assert e["cosigned_note"] == first["note"]
        assert e["conflicting_note"] == forged
    assert sum("LEDGER FORK: witness" in m for m in critical(caplog)) == len(deploy.runtimes)
    served = await get(deploy, "/v1/ledger/witnesses")
    assert len(served["witness_keys"]) == len(deploy.runtimes)
    assert {f["conflicting_note"] for f in served["forks"]} == {forged}

    # The forked checkpoint carries no valid cosignature: --witnesses refuses it.
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    assert json.loads(bundle.read_text())["checkpoint"]["note"] == forged + "".join(
        (await store.cosignature_lines([size]))[size]
    )
    code, output = verify_cli(str(bundle), "--witnesses", "1")
    assert code == 1, output
    assert "required" in output


async def cosigned_by_all(deploy: Deployment, size: int) -> dict[str, Any]:
    """The served latest checkpoint once every node's witness cosigned a checkpoint ≥ size."""

    async def probe() -> dict[str, Any] | None:
        lines = await deploy.writer_host.ledger.cosignature_lines([size])
        if len(lines.get(size, [])) < len(deploy.runtimes):
            return None
        return cast(dict[str, Any], await get(deploy, "/v1/ledger/checkpoint"))

    return await eventually(probe, what=f"every witness's cosignature on checkpoint {size}")


async def test_checkpoints_are_cosigned_and_verify_requires_the_cosignatures(
    deploy: Deployment, tmp_path: Path
) -> None:
    await share(deploy)
    writer = await deploy.stop_ledger_writer()  # the ledger and its checkpoints stand still
    await writer.checkpointer.cut()
    first = await settled_checkpoint(deploy)
    served = await cosigned_by_all(deploy, first["tree_size"])
    assert served["note"].count("/witness ") == len(deploy.runtimes)

    bundle = tmp_path / "bundle.json"
    export = await get(deploy, "/v1/ledger/export", cosigned=4)
    assert export["checkpoint"]["tree_size"] == first["tree_size"]
    assert len(export["witness_keys"]) == len(deploy.runtimes)
    bundle.write_text(json.dumps(export))
    trust = tmp_path / "trust.json"
    code, output = verify_cli(str(bundle), "--trust", str(trust), "--witnesses", "2")
    assert code == 0, output
    assert f"cosigned by {len(deploy.runtimes)} witness(es)" in output
    assert json.loads(trust.read_text())["witness_keys"] == export["witness_keys"]

    # More than there are witnesses: refused.
    code, output = verify_cli(str(bundle), "--trust", str(trust), "--witnesses", "5")
    assert code == 1, output
    assert "4 valid cosignature(s) by the pinned witnesses, 5 required" in output

    # A checkpoint served without its cosignatures (or with one forged) fails --witnesses.
    note = export["checkpoint"]["note"]
    text, _, block = note.rpartition("\n\n")
    log_line = next(line for line in block.splitlines() if "/witness " not in line)
    stripped = dict(export, checkpoint=dict(export["checkpoint"], note=f"{text}\n\n{log_line}\n"))
    bundle.write_text(json.dumps(stripped))
    code, output = verify_cli(str(bundle), "--trust", str(trust), "--witnesses", "2")
    assert code == 1, output
    assert "0 valid cosignature(s) by the pinned witnesses, 2 required" in output
    assert verify_cli(str(bundle), "--trust", str(trust))[0] == 0  # without --witnesses, fine

    # Cosignatures by keys the auditor did not pin do not count.
    other = Cosigner.from_signing_key("blo-karamyk-kg/witness", SigningKey.generate())
    parsed = parse_checkpoint(text + "\n")
    fake = dict(
        export,
        checkpoint=dict(
            export["checkpoint"],
            note=f"{text}\n\n{log_line}\n"
            + other.cosign(parsed.text(), 1_800_000_000)
            + other.cosign(parsed.text(), 1_800_000_001),
        ),
    )
    bundle.write_text(json.dumps(fake))
    code, output = verify_cli(str(bundle), "--trust", str(trust), "--witnesses", "1")
    assert code == 1, output


async def test_entries_a_compromised_writer_signs_without_a_valid_record_are_named(
    deploy: Deployment, tmp_path: Path
) -> None:
    """The writer is trusted for order only: what an entry says must follow from the record a
    node signed, which ``ledger verify`` checks with the directory's node keys."""
    alert_id = await share(deploy)
    runtime = deploy.writer_host.ledger_writer
    assert runtime is not None
    journal = await runtime.journal_ready()
    assert journal is not None
    body = {
        "receipt_id": "forged-feedback-1",
        "type": "feedback",
        "node": TJ,
        "agency": "tj-drug-control-agency",
        "alert_id": alert_id,
        "border_pair": "KG-TJ",
        "kind": "seizure",
        "occurred_at": "2026-11-28T07:00:00.000Z",
        "detail": {"outcome": "seized"},
    }
    # (a) "Seized", says a record signed by a key that is not the TJ node's.
    unknown = sign_receipt(body, SigningKey.generate())
    forged = build_entry(
        event_id="receipt:forged-feedback-1",
        record=unknown,
        **receipt_fields(body, border_pair="KG-TJ"),
    )
    # (b) The TJ node's genuine record, with the entry's agency changed by the writer.
    genuine = sign_receipt(
        body | {"receipt_id": "forged-feedback-2"}, deploy.runtimes[TJ].keys.signing
    )
    bent = build_entry(
        event_id="receipt:forged-feedback-2",
        record=genuine,
        **receipt_fields(body | {"receipt_id": "forged-feedback-2"}, border_pair="KG-TJ")
        | {"actor_agency": "uz-customs-committee"},
    )
    # (c) No record at all.
    bare = build_entry(
        event_id="receipt:forged-feedback-3",
        **receipt_fields(body | {"receipt_id": "forged-feedback-3"}, border_pair="KG-TJ"),
    )
    indexes = await runtime.writer._append([forged, bent, bare])
    assert len(indexes) == 3
    await runtime.checkpointer.cut()
    await settled_checkpoint(deploy)

    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    code, output = verify_cli(str(bundle))
    assert code == 1, output
    a, b, c = indexes
    assert f"entry {a}: its signed record does not verify" in output
    assert f"entry {b}: its field(s) actor_agency differ from its signed record" in output
    assert f"entry {c}: it carries no signed record" in output
    # Every genuine entry (shares, deliveries, queries, directory changes) verifies.
    assert output.count("\n  - entry ") == 3, output
