"""A recipient's nominal files under the lifecycle (services.retention_files) with fakes: kept
sealed under the alert's vault row while its epoch key exists, never opened or stored after;
files of alerts not under this node's retention pass as they are."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from blo_exchange.crypto.retention import seal_nominal
from blo_exchange.domain.retention import day_of
from blo_exchange.services.retention import RetainedNominal
from blo_exchange.services.retention_files import NominalFiles
from tests.unit.services.retention_fakes import FakeKeys, FakeStore
from tests.unit.services.world import NOW, World

TJ = "blo-karamyk-tj"
ALERT = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
EXPIRES = NOW + timedelta(days=30)


def row(keys: FakeKeys, *, role: str = "recipient", sealed: bool = True) -> RetainedNominal:
    key = keys.get(day_of(EXPIRES), create=True)
    assert key is not None
    return RetainedNominal(
        node_id=TJ,
        alert_id=ALERT,
        role=role,
        agency_id="tj-drug-control-agency",
        origin_agency="kg-border-service",
        border_pair="KG-TJ",
        kind="seizure",
        agreement_id="mou-kg-tj-2026",
        agreement_ids=("mou-kg-tj-2026",),
        envelope_sha256="0" * 64,
        created_at=NOW,
        expires_at=EXPIRES,
        max_until=EXPIRES,
        sealed=seal_nominal(b"{}", key, alert_id=ALERT, day=day_of(EXPIRES)) if sealed else None,
    )


def files(store: FakeStore, keys: FakeKeys) -> NominalFiles:
    return NominalFiles(node=World.demo().node(TJ), store=store, keys=keys)


async def test_a_nominal_file_is_kept_sealed_until_its_days_key_is_destroyed() -> None:
    store, keys = FakeStore(), FakeKeys()
    store.put(row(keys))
    vault = files(store, keys)
    stored = await vault.seal(ALERT, "file-2", b"ciphertext")
    assert stored is not None
    assert b"ciphertext" not in stored
    assert await vault.open(ALERT, "file-2", stored) == b"ciphertext"
    assert await vault.open(ALERT, "file-1", stored) is None  # moved to another part
    keys.destroy(day_of(EXPIRES))
    assert await vault.open(ALERT, "file-2", stored) is None
    assert await vault.seal(ALERT, "file-2", b"ciphertext") is None  # arrives too late: dropped


async def test_an_erased_or_late_row_stores_and_serves_nothing() -> None:
    store, keys = FakeStore(), FakeKeys()
    store.put(replace(row(keys), sealed=None, erased_at=EXPIRES))
    vault = files(store, keys)
    assert await vault.seal(ALERT, "file-2", b"ciphertext") is None
    assert await vault.open(ALERT, "file-2", b"whatever") is None


async def test_files_of_alerts_not_under_this_nodes_retention_pass_as_they_are() -> None:
    store, keys = FakeStore(), FakeKeys()
    vault = files(store, keys)
    assert await vault.seal(ALERT, "file-2", b"ciphertext") == b"ciphertext"  # no row
    store.put(row(keys, role="origin", sealed=False))  # the originator's own alert
    assert await vault.seal(ALERT, "file-2", b"ciphertext") == b"ciphertext"
    assert await vault.open(ALERT, "file-2", b"ciphertext") == b"ciphertext"
