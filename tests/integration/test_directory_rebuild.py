"""The directory stream is the source: a node's directory copy is a cache of it (what a database
superuser deletes from it, here a revocation, is back when the node starts, because the node
re-reads the stream), and so are the node keys the ledger's own database keeps for auditors'
answers and exports (a rotated key appears there, a revoked one is marked)."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

from blo_exchange.bootstrap.node import NodeRuntime
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey, public_key_record
from blo_exchange.crypto.statements import sign_statement
from blo_exchange.db.engine import create_engine
from blo_exchange.domain.statements import key_statement, revocation_statement
from blo_exchange.domain.subjects import DIRECTORY_SUBJECT
from tests.integration.pipeline import Deployment, deployment, eventually

TJ_A = "tj-drug-control-agency"
UZ = "blo-oybek-uz"
SUITE = HpkeSuite.MLKEM768_X25519


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys", signed=True) as running:
        yield running


async def _current_key(runtime: NodeRuntime) -> str | None:
    trusted = runtime.trusted
    assert trusted is not None
    await trusted.refresh()
    key = await trusted.current_kem_key(TJ_A, SUITE)
    return None if key is None else key.key_id


async def test_a_revocation_deleted_from_the_copy_is_back_at_start(
    deploy: Deployment, database_url: str
) -> None:
    # TJ's root registers a new encryption key and revokes it, both on the directory stream.
    now = datetime.now(UTC)
    new_key = KemPrivateKey.generate(SUITE).public_key()
    root = deploy.seed.roots[TJ_A]
    registered = sign_statement(
        key_statement(
            agency=TJ_A,
            owner_kind="agency",
            owner_id=TJ_A,
            key=public_key_record(new_key),
            issued_at=now + timedelta(seconds=1),
        ),
        agency=TJ_A,
        root=root,
    )
    revoked = sign_statement(
        revocation_statement(
            agency=TJ_A,
            key_id=new_key.key_id,
            revoked_at=now + timedelta(seconds=2),
            issued_at=now + timedelta(seconds=2),
        ),
        agency=TJ_A,
        root=root,
    )
    uz = deploy.runtimes[UZ]
    for raw in (registered, revoked):
        await uz.bus.publish(DIRECTORY_SUBJECT, raw, msg_id=hashlib.sha256(raw).hexdigest())

    async def revocation_copied() -> bool:
        key = await _current_key(uz)
        return key is not None and key != new_key.key_id and await _has(database_url, revoked)

    await eventually(revocation_copied, what="the revocation in UZ's copy")

    # The database's superuser deletes the revocation behind the append-only trigger.
    await uz.stop()
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            deleted = await conn.execute(
                text("DELETE FROM directory_statements WHERE raw_sha256 = :h"),
                {"h": hashlib.sha256(revoked).hexdigest()},
            )
            assert deleted.rowcount == 1
    finally:
        await engine.dispose()
    # Read from the copy alone, the key is believed again: the deletion is real.
    tj = deploy.runtimes["blo-karamyk-tj"]
    assert await _current_key(tj) == new_key.key_id

    # UZ starts again: its durable consumer acked the revocation long ago and will not bring it
    # back; the start re-reads the stream and does.
    restarted = await NodeRuntime.start(uz.settings)
    deploy.runtimes[UZ] = restarted
    assert await _has(database_url, revoked)
    assert await _current_key(restarted) != new_key.key_id


async def _has(database_url: str, raw: bytes) -> bool:
    engine = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            found = await conn.scalar(
                text("SELECT count(*) FROM directory_statements WHERE raw_sha256 = :h"),
                {"h": hashlib.sha256(raw).hexdigest()},
            )
            return bool(found)
    finally:
        await engine.dispose()


async def test_a_rotated_node_key_reaches_the_ledgers_node_keys(deploy: Deployment) -> None:
    """UZ's root signs a new node signing key, then revokes it, on the stream only: the ledger
    writer keeps both facts in its own database, where answers and exports read node keys."""
    now = datetime.now(UTC)
    root = deploy.seed.roots["uz-customs-committee"]
    new_key = SigningKey.generate()
    bus = deploy.runtimes[UZ].bus
    registered = sign_statement(
        key_statement(
            agency="uz-customs-committee",
            owner_kind="node",
            owner_id=UZ,
            key=public_key_record(new_key),
            issued_at=now + timedelta(seconds=1),
        ),
        agency="uz-customs-committee",
        root=root,
    )
    await bus.publish(DIRECTORY_SUBJECT, registered, msg_id=hashlib.sha256(registered).hexdigest())
    store = deploy.writer_host.ledger

    def uz_key(keys: dict[str, dict[str, object]]) -> dict[str, object] | None:
        listed = keys.get(UZ, {}).get("keys", [])
        assert isinstance(listed, list)
        return next((k for k in listed if k["key_id"] == new_key.key_id), None)

    async def listed() -> dict[str, object] | None:
        return uz_key(await store.node_keys())

    assert (await eventually(listed, what="the new key among the ledger's node keys"))[
        "revoked_at"
    ] is None
    revoked = sign_statement(
        revocation_statement(
            agency="uz-customs-committee",
            key_id=new_key.key_id,
            revoked_at=now + timedelta(seconds=2),
            issued_at=now + timedelta(seconds=2),
        ),
        agency="uz-customs-committee",
        root=root,
    )
    await bus.publish(DIRECTORY_SUBJECT, revoked, msg_id=hashlib.sha256(revoked).hexdigest())

    async def marked() -> bool:
        key = uz_key(await store.node_keys())
        return key is not None and key["revoked_at"] is not None

    await eventually(marked, what="the revocation marked on the ledger's node key")
