"""The ledger writer is trusted for order only, and only for what it appended itself.

Attacks tried as the issue describes them, on a running deployment (real Postgres and NATS, the
superuser's database URL): a forged row inserted at the next index, and a log truncated behind
the triggers to be regrown as a fork. The writer's own state file (``ledger.journal``) makes it
refuse both, logging CRITICAL with the index, and never sign a checkpoint covering them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from blo_exchange.db.engine import create_engine
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger import merkle
from blo_exchange.ledger.entries import build_entry
from blo_exchange.ledger.journal import LedgerForkError
from tests.integration.pipeline import Deployment, deployment
from tests.integration.test_ledger_checkpoints import (
    KG,
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


async def test_a_truncate_and_regrow_fork_is_refused_by_the_writer(
    deploy: Deployment, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    await share(deploy)
    await share(deploy)
    first = await settled_checkpoint(deploy)
    size = first["tree_size"]
    assert size > 5
    cut = size - 5

    # A superuser deletes the last 5 entries, their nodes and the checkpoints covering them.
    await tamper(
        database_url,
        f"DELETE FROM ledger_entries WHERE idx >= {cut}",
        f"DELETE FROM ledger_tree_nodes WHERE (idx + 1) * (1::bigint << level) > {cut}",
        f"DELETE FROM ledger_checkpoints WHERE tree_size > {cut}",
    )
    await share_unrecorded(deploy)  # new entries would regrow the log at the deleted indexes
    await asyncio.sleep(2.5)
    assert any(f"entries from index {cut} were removed" in m for m in critical(caplog))
    assert await deploy.writer_host.ledger.size() == cut  # nothing appended after the cut
    checkpoints = await deploy.writer_host.ledger.checkpoints()
    assert max((c.tree_size for c in checkpoints), default=0) <= cut  # none signed again

    # A restarted writer remembers what it appended (its state file) and refuses too.
    await deploy.stop_ledger_writer()
    writer = deploy.start_ledger_writer()
    with pytest.raises(LedgerForkError, match=f"entries from index {cut} were removed"):
        await writer.checkpointer.cut()
    assert await deploy.writer_host.ledger.size() == cut
