"""Issue #11 for the ledger's own keys, on real servers: the hub ledger's checkpoint key and the
witnesses' keys are believed only from statements the agencies' roots signed.

The deployment runs as ``make run`` does (signed directory, roots pinned in each key directory);
the database URL is the superuser's, which plants rows in the directory tables and swaps the
latest checkpoint behind the triggers.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.note import Cosigner, NoteVerifier, format_checkpoint
from blo_exchange.demo.directory import PINNED_ROOTS_FILE
from blo_exchange.domain.ids import utc_now
from blo_exchange.ledger.checkpoints import note_signer
from tests.integration.package_cli import export_package, package_cli
from tests.integration.pipeline import Deployment, deployment
from tests.integration.test_ledger_checkpoints import (
    KG,
    ORIGIN,
    get,
    paused_writer_checkpoint,
    share,
    tamper,
    verify_cli,
)
from tests.integration.test_ledger_writer_trust import cosigned_by_all

TJ = "blo-karamyk-tj"
TJ_AGENCY = "tj-drug-control-agency"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys", signed=True) as d:
        yield d


def roots_file(deploy: Deployment) -> str:
    """The pinned-roots file an auditor holds (the same three roots a node pins)."""
    return str(deploy.runtimes[KG].settings.key_dir / PINNED_ROOTS_FILE)  # type: ignore[operator]


async def plant_key_row(database_url: str, kind: str, owner: str, key: SigningKey) -> None:
    await tamper(
        database_url,
        "INSERT INTO public_keys (key_id, owner_kind, owner_id, alg, public, created_at) "
        f"VALUES ('{key.key_id}', '{kind}', '{owner}', 'Ed25519', "
        f"'\\x{key.public_bytes().hex()}'::bytea, now())",
    )


async def test_a_witness_key_planted_in_the_database_is_never_counted_as_a_cosigner(
    deploy: Deployment, database_url: str, tmp_path: Path
) -> None:
    await share(deploy)
    checkpoint = await paused_writer_checkpoint(deploy)
    size = checkpoint["tree_size"]
    await cosigned_by_all(deploy, size)  # the four witnesses whose keys their agencies signed

    # The superuser registers a fifth witness as a row and stores its cosignature.
    planted = SigningKey.generate()
    cosigner = Cosigner.from_signing_key("blo-phantom-kg/witness", planted)
    line = cosigner.cosign(
        format_checkpoint(ORIGIN, size, bytes.fromhex(checkpoint["root_hash"])),
        int(utc_now().timestamp()),
    )
    await plant_key_row(database_url, "witness", "blo-phantom-kg", planted)
    await deploy.runtimes[KG].ledger.add_cosignature(size, cosigner.name, line)

    served = await get(deploy, "/v1/ledger/witnesses")
    assert len(served["witness_keys"]) == 4
    assert not any(k.startswith("blo-phantom-kg/") for k in served["witness_keys"])
    export = await get(deploy, "/v1/ledger/export", cosigned=5)  # five lines are stored...
    assert export["checkpoint"]["note"].count("/witness ") == 5
    assert export["witness_keys"] == served["witness_keys"]
    bundle = tmp_path / "bundle.json"
    bundle.write_text(json.dumps(export))
    # ...but only the four signed witnesses count, with the auditor's roots or the node's word.
    for extra in (("--roots", roots_file(deploy)), ()):
        code, output = verify_cli(str(bundle), *extra, "--witnesses", "5")
        assert code == 1, output
        assert "4 valid cosignature(s) by the pinned witnesses, 5 required" in output
    code, output = verify_cli(str(bundle), "--roots", roots_file(deploy), "--witnesses", "4")
    assert code == 0, output
    assert "cosigned by 4 witness(es)" in output
    assert "1 ledger key(s), 4 witness key(s)" in output


async def test_a_checkpoint_signed_by_a_ledger_key_planted_in_the_database_is_refused(
    deploy: Deployment, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    since = utc_now() - timedelta(seconds=1)
    await share(deploy)
    checkpoint = await paused_writer_checkpoint(deploy)
    size, root = checkpoint["tree_size"], bytes.fromhex(checkpoint["root_hash"])
    genuine = await get(deploy, "/v1/ledger/export")
    bundle = tmp_path / "genuine.json"
    bundle.write_text(json.dumps(genuine))
    code, output = verify_cli(str(bundle), "--roots", roots_file(deploy))
    assert code == 0, output

    # The superuser registers a ledger key as a row, and swaps the latest checkpoint for the
    # same tree head signed by it.
    planted = SigningKey.generate()
    await plant_key_row(database_url, "ledger", ORIGIN, planted)
    assert planted.key_id in await deploy.runtimes[KG].directory.verify_keys(
        "ledger", ORIGIN, utc_now()
    )  # a process believing rows would take it
    forged = note_signer(ORIGIN, planted).sign(format_checkpoint(ORIGIN, size, root))
    await tamper(
        database_url,
        f"DELETE FROM ledger_checkpoints WHERE tree_size = {size}",
        "INSERT INTO ledger_checkpoints (tree_size, root_hash, note) "
        f"VALUES ({size}, '\\x{root.hex()}'::bytea, '{forged}')",
    )
    deploy.invalidate_directories()

    # (1) The node refuses to answer from it, saying why.
    response = await deploy.client(KG).get("/v1/ledger/entries", headers=deploy.auditor)
    assert response.status_code == 500, response.text
    assert response.json()["type"].endswith("ledger-integrity")
    assert f"checkpoint {size} is signed by no ledger key in force" in response.json()["detail"]
    # (2) A witness ignores it.
    witness = deploy.runtimes[TJ].witness
    assert witness is not None
    with caplog.at_level(logging.WARNING):
        assert await witness.witness.observe() is None
    assert f"checkpoint {size} ignored" in caplog.text

    # (3) A package carrying it is refused by the importing node, before anything is delivered.
    package = tmp_path / "karamyk.blopkg"
    code, output = await export_package(deploy, KG, since=since, destination=TJ_AGENCY, to=package)
    assert code == 0, output
    code, output = await package_cli(deploy, TJ, "import", str(package))
    assert code == 1, output
    assert "package refused: checkpoint.txt: bad_checkpoint_signature" in output

    # (4) An auditor given a bundle naming the planted key: on its word alone it would pass (the
    # first use of a key); against the auditor's roots it is refused.
    doctored: dict[str, Any] = genuine | {
        "ledger_public_key": NoteVerifier(ORIGIN, planted.public_bytes()).verifier_key_string(),
        "checkpoint": checkpoint | {"note": forged},
        "checkpoints": [checkpoint | {"note": forged}],
    }
    bundle.write_text(json.dumps(doctored))
    code, output = verify_cli(str(bundle))
    assert code == 0, output
    assert "trust on first use" in output
    code, output = verify_cli(str(bundle), "--roots", roots_file(deploy))
    assert code == 1, output
    assert "is not granted by a ledger_key statement signed by every pinned agency's root" in output
