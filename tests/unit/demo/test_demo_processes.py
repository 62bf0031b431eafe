"""Which database each demo process is given: its own role's, never the superuser's."""

from __future__ import annotations

from pathlib import Path

from blo_exchange.demo.processes import DemoProcesses

SUPERUSER = "postgresql://postgres:su@127.0.0.1:5432/blo_ledger"
CREDENTIALS = {
    "nodes": {
        "blo-karamyk-kg": {"url": "http://127.0.0.1:1", "agency": "kg-border-service"},
        "blo-karamyk-tj": {"url": "http://127.0.0.1:2", "agency": "tj-drug-control-agency"},
    },
    "nats_url": "nats://127.0.0.1:4222",
    "databases": {
        "ledger": "postgresql://blo_ledger:l@127.0.0.1:5432/blo_ledger",
        "kg-border-service": "postgresql://blo_kg:k@127.0.0.1:5432/blo_kg",
        "tj-drug-control-agency": "postgresql://blo_tj:t@127.0.0.1:5432/blo_tj",
    },
    "ledger_witness_databases": {
        "kg-border-service": "postgresql://blo_kg_witness:kw@127.0.0.1:5432/blo_ledger",
        "tj-drug-control-agency": "postgresql://blo_tj_witness:tw@127.0.0.1:5432/blo_ledger",
    },
    "database_url": SUPERUSER,
}


def test_each_node_gets_its_agencys_database_and_witness_role(tmp_path: Path) -> None:
    processes = DemoProcesses(tmp_path, CREDENTIALS)
    kg = processes._env(BLO_NODE_ID="blo-karamyk-kg")
    assert kg["BLO_DATABASE_URL"] == "postgresql+asyncpg://blo_kg:k@127.0.0.1:5432/blo_kg"
    assert kg["BLO_LEDGER_DATABASE_URL"].startswith("postgresql+asyncpg://blo_kg_witness:")
    tj = processes._env(BLO_NODE_ID="blo-karamyk-tj")
    assert tj["BLO_DATABASE_URL"].endswith("/blo_tj")


def test_the_ledger_writer_gets_the_ledgers_owner_and_no_one_the_superuser(
    tmp_path: Path,
) -> None:
    processes = DemoProcesses(tmp_path, CREDENTIALS)
    writer = processes._env()
    assert writer["BLO_DATABASE_URL"].startswith("postgresql+asyncpg://blo_ledger:l@")
    assert "BLO_LEDGER_DATABASE_URL" not in writer
    for env in (writer, processes._env(BLO_NODE_ID="blo-karamyk-kg")):
        assert not any("postgres:su@" in value for value in env.values())
