"""Checkpoints, proofs, export and offline verification on a running deployment; then tampering.

Four demo nodes and a ledger writer in this process, real nats-server and Postgres. The database
URL is the superuser's, which is how the tampering below gets past the append-only triggers.
"""

from __future__ import annotations

import asyncio
import json
import stat
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.crypto.canonical import b64u_decode
from blo_exchange.crypto.note import open_checkpoint, parse_checkpoint, parse_verifier_key
from blo_exchange.db.engine import create_engine
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger import merkle
from blo_exchange.ledger.checkpoints import CHECKPOINT_SUBJECT, LedgerForkError
from blo_exchange.ledger.ports import EntryFilter
from tests.integration.pipeline import Deployment, deployment, eventually, ledger_has

KG, UZ = "blo-karamyk-kg", "blo-oybek-uz"
ORIGIN = "blo-exchange.example/ledger"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def share(deploy: Deployment) -> str:
    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    alert_id: str = response.json()["alert_id"]
    await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="alert_delivered"), what="the delivery"
    )
    return alert_id


async def settled_checkpoint(deploy: Deployment) -> dict[str, Any]:
    """The latest checkpoint once it covers every entry appended so far.

    Read from the store, not through the API: every auditor request appends a ledger_queried
    entry, so a ledger polled through the API never stands still.
    """
    ledger = deploy.runtimes[KG].ledger

    async def probe() -> dict[str, Any] | None:
        latest = await ledger.latest_checkpoint()
        if latest is None or latest.tree_size != await ledger.size():
            return None
        return {
            "tree_size": latest.tree_size,
            "root_hash": latest.root_hash.hex(),
            "note": latest.note,
        }

    return await eventually(probe, what="a checkpoint covering the ledger")


async def paused_writer_checkpoint(deploy: Deployment) -> dict[str, Any]:
    """Stop the ledger writer and return the checkpoint covering everything it appended.

    With the writer stopped, the ledger_queried records of the requests that follow wait in
    JetStream, so the ledger and its latest checkpoint stay put while the test looks at them.
    """
    writer = await deploy.stop_ledger_writer()
    await writer.checkpointer.cut()  # covers the last batch, if the ticker had not yet
    return await settled_checkpoint(deploy)


async def get(deploy: Deployment, path: str, **params: Any) -> Any:
    response = await deploy.client(KG).get(path, params=params, headers=deploy.auditor)
    assert response.status_code == 200, response.text
    return response.json()


def verify_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["ledger", "verify", *args])
    return result.exit_code, result.output


async def tamper(database_url: str, *statements: str) -> None:
    """Run ``statements`` as the superuser with triggers off (``session_replication_role``)."""
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            for statement in statements:
                await conn.execute(text(statement))
    finally:
        await engine.dispose()


async def test_checkpoints_proofs_export_and_tampering(
    deploy: Deployment, database_url: str, tmp_path: Path
) -> None:
    await share(deploy)
    await share(deploy)
    first = await paused_writer_checkpoint(deploy)
    assert first["tree_size"] >= 4

    # The note is a C2SP checkpoint signed by the ledger key registered in the directory.
    keys = await deploy.runtimes[KG].directory.verify_keys("ledger", ORIGIN, utc_now())
    assert len(keys) == 1
    (registered,) = keys.values()
    export = await get(deploy, "/v1/ledger/export")
    verifier = parse_verifier_key(export["ledger_public_key"])
    assert verifier.public_key_raw == registered.public
    parsed = open_checkpoint(first["note"], [verifier], ORIGIN)
    assert parsed.size == first["tree_size"]
    assert parsed.root_hash.hex() == first["root_hash"]

    # Every entry's inclusion proof verifies against the checkpoint's root.
    size, root = first["tree_size"], bytes.fromhex(first["root_hash"])
    entries = (await get(deploy, "/v1/ledger/entries", limit=1000))["entries"]
    assert [e["index"] for e in entries[:size]] == list(range(size))
    for entry in entries[:size]:
        proof = await get(
            deploy, "/v1/ledger/proofs/inclusion", index=entry["index"], tree_size=size
        )
        merkle.verify_inclusion(
            merkle.leaf_hash(b64u_decode(entry["leaf_input"])),
            entry["index"],
            size,
            [bytes.fromhex(p) for p in proof["path"]],
            root,
        )
    beyond = await deploy.client(KG).get(
        "/v1/ledger/proofs/inclusion",
        params={"index": 0, "tree_size": size + 100},
        headers=deploy.auditor,
    )
    assert beyond.status_code == 422
    assert beyond.headers["content-type"].startswith("application/problem+json")

    # A later checkpoint is consistent with the first.
    trust = tmp_path / "trust.json"
    bundle = tmp_path / "first.json"
    bundle.write_text(json.dumps(export))
    code, output = verify_cli(str(bundle), "--trust", str(trust))
    assert code == 0, output
    assert stat.S_IMODE(trust.stat().st_mode) == 0o600
    first_trust = trust.read_text()

    deploy.start_ledger_writer()  # it catches up with the queries above, then records the share
    await share(deploy)
    second = await paused_writer_checkpoint(deploy)
    assert second["tree_size"] > size
    proof = await get(
        deploy, "/v1/ledger/proofs/consistency", first=size, second=second["tree_size"]
    )
    merkle.verify_consistency(
        size,
        second["tree_size"],
        root,
        bytes.fromhex(second["root_hash"]),
        [bytes.fromhex(p) for p in proof["path"]],
    )

    # The export verifies offline, and is consistent with the checkpoint accepted before.
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    code, output = verify_cli(str(bundle), "--trust", str(trust))
    assert code == 0, output
    later_trust = tmp_path / "later.json"
    later_trust.write_text(trust.read_text())

    # Who shared with whom.
    sharing = await get(deploy, "/v1/ledger/sharing")
    assert {
        "origin_agency": "kg-border-service",
        "recipient_agency": "tj-drug-control-agency",
        "border_pair": "KG-TJ",
        "kind": "seizure",
        "count": 3,
    } in sharing["sharing"]
    csv = await deploy.client(KG).get(
        "/v1/ledger/sharing", params={"format": "csv"}, headers=deploy.auditor
    )
    assert csv.text.splitlines()[0] == "origin_agency,recipient_agency,border_pair,kind,count"
    # The auditor need not believe the server's summary: ledger verify counts its own.
    code, output = verify_cli(str(bundle), "--sharing")
    assert code == 0, output
    assert "kg-border-service,tj-drug-control-agency,KG-TJ,seizure,3" in output.splitlines()

    # Without the replica role, the triggers refuse every change.
    engine = create_engine(database_url, pool_size=1)
    try:
        for statement in (
            "UPDATE ledger_entries SET leaf_input = leaf_input WHERE idx = 0",
            "DELETE FROM ledger_entries WHERE idx = 0",
            "TRUNCATE ledger_entries CASCADE",
            "DELETE FROM ledger_checkpoints",
            "UPDATE ledger_tree_nodes SET hash = hash",
        ):
            with pytest.raises(DBAPIError, match="append-only"):
                async with engine.begin() as conn:
                    await conn.execute(text(statement))
    finally:
        await engine.dispose()

    # A superuser alters one entry: the verifier names it.
    altered = 1
    await tamper(
        database_url,
        "UPDATE ledger_entries SET leaf_input = leaf_input || '\\x20'::bytea "
        f"WHERE idx = {altered}",
    )
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    code, output = verify_cli(str(bundle), "--trust", str(later_trust))
    assert code == 1, output
    assert f"entry {altered} was altered" in output

    # The superuser then truncates the log back to the first checkpoint: reported as such
    # against the trust file that remembers the second.
    await tamper(
        database_url,
        f"UPDATE ledger_entries SET leaf_input = substring(leaf_input from 1 for "
        f"length(leaf_input) - 1) WHERE idx = {altered}",
        f"DELETE FROM ledger_entries WHERE idx >= {size}",
        f"DELETE FROM ledger_tree_nodes WHERE (idx + 1) * (1::bigint << level) > {size}",
        f"DELETE FROM ledger_checkpoints WHERE tree_size > {size}",
    )
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    code, output = verify_cli(str(bundle), "--trust", str(tmp_path / "fresh.json"))
    assert code == 0, output  # on its own, the shortened log is self-consistent…
    trust.write_text(first_trust)
    code, output = verify_cli(str(bundle), "--trust", str(trust))
    assert code == 0, output  # …and consistent with what was seen before the second…
    code, output = verify_cli(str(bundle), "--trust", str(later_trust))
    assert code == 1, output  # …but not with a witness that saw the second.
    assert f"log truncated from {second['tree_size']} to {size}" in output


async def test_the_writer_refuses_to_sign_a_fork_and_publishes_checkpoints(
    deploy: Deployment, database_url: str
) -> None:
    await share(deploy)
    await settled_checkpoint(deploy)
    runtime = deploy.runtimes[KG]
    published = await runtime.bus.js.get_last_msg("BLO_LEDGER", CHECKPOINT_SUBJECT)
    assert published.data is not None
    assert parse_checkpoint(published.data.decode().split("\n\n")[0] + "\n").size >= 1

    # A superuser rewrites the stored tree: it no longer gives the signed root.
    first = await paused_writer_checkpoint(deploy)
    await tamper(database_url, "UPDATE ledger_tree_nodes SET hash = sha256(hash)")
    writer = deploy.start_ledger_writer()
    # It stops at once: nothing more is appended or signed on a tree it no longer recognises.
    with pytest.raises(LedgerForkError, match="stored tree nodes no longer give the root"):
        await writer.checkpointer.cut()
    size = await runtime.ledger.size()
    response = await deploy.client(KG).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE,
        headers=deploy.terminal(KG) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    await asyncio.sleep(1.5)
    with pytest.raises(LedgerForkError, match="stopped"):
        await writer.checkpointer.cut()
    assert await runtime.ledger.size() == size
    latest = await runtime.ledger.latest_checkpoint()
    assert latest is not None
    assert latest.tree_size == first["tree_size"]


async def test_a_column_changed_behind_the_triggers_fails_the_answer_and_is_named(
    deploy: Deployment, database_url: str, tmp_path: Path
) -> None:
    alert_id = await share(deploy)
    await paused_writer_checkpoint(deploy)
    before = await get(deploy, "/v1/ledger/sharing")  # the KG node verifies every entry
    assert "uz-customs-committee" not in {r["origin_agency"] for r in before["sharing"]}
    ledger = deploy.runtimes[KG].ledger
    ((shared, _),) = await ledger.entries(
        EntryFilter(type="alert_shared", alert_id=alert_id), after=-1, limit=10
    )
    ((delivered, _),) = await ledger.entries(
        EntryFilter(type="alert_delivered", alert_id=alert_id), after=-1, limit=10
    )
    assert shared < delivered

    # (1) A superuser hides TJ's delivery from the TJ filter by changing its indexed column
    # after the KG node verified it: the filtered answer would quietly omit it; it fails.
    await tamper(
        database_url,
        f"UPDATE ledger_entries SET actor_agency = 'uz-customs-committee' WHERE idx = {delivered}",
    )
    hidden = await deploy.client(KG).get(
        "/v1/ledger/entries",
        params={"agency": "tj-drug-control-agency", "type": "alert_delivered"},
        headers=deploy.auditor,
    )
    assert hidden.status_code == 500, hidden.text
    assert hidden.headers["content-type"].startswith("application/problem+json")
    assert hidden.json()["type"].endswith("/ledger-integrity")
    assert f"entry {delivered}" in hidden.json()["detail"]
    # …and the KG node answers nothing more (the sharing summary included).
    refused = await deploy.client(KG).get("/v1/ledger/sharing", headers=deploy.auditor)
    assert refused.status_code == 500, refused.text

    # (2) The attack: the UZ agency made the origin of the KG alert, in the column
    # only. A node that had not verified that entry yet refuses every answer, JSON and CSV.
    await tamper(
        database_url,
        f"UPDATE ledger_entries SET actor_agency = 'uz-customs-committee' WHERE idx = {shared}",
    )
    for params in ({"format": "json"}, {"format": "csv"}):
        wrong = await deploy.client(UZ).get(
            "/v1/ledger/sharing", params=params, headers=deploy.auditor
        )
        assert wrong.status_code == 500, wrong.text
        assert f"entry {shared}" in wrong.json()["detail"]
        assert "actor_agency" in wrong.json()["detail"]

    # ledger verify names both indexes from the export, which carries the columns as stored.
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(await get(deploy, "/v1/ledger/export")))
    code, output = verify_cli(str(bundle))
    assert code == 1, output
    for index in (shared, delivered):
        assert f"entry {index}: its database column(s) actor_agency disagree" in output
