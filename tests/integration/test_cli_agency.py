"""docs/administering-trust.md with the CLI alone: roots, pinning, a node, a key, an agreement
co-signed by both parties offline, published to a node's database and believed from there."""

from __future__ import annotations

import asyncio
import json
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.crypto.roots import load_pinned_roots
from blo_exchange.db.engine import create_engine, migrate, session_factory
from blo_exchange.db.statements import SignedDirectory, SqlStatementStore
from blo_exchange.domain.directory import Principal
from blo_exchange.domain.statements import DirectoryFacts
from blo_exchange.errors import BloExchangeError

KG, TJ = "kg-border-service", "tj-drug-control-agency"


class NoPrincipals:
    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return None


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    asyncio.run(migrate(database_url))
    monkeypatch.setenv("BLO_DATABASE_URL", database_url)
    return CliRunner()


def invoke(runner: CliRunner, *args: str, input_: str | None = None) -> str:
    result = runner.invoke(app, list(args), input=input_)
    assert result.exit_code == 0, result.output
    return result.output


def refused(runner: CliRunner, *args: str) -> str:
    """The command fails with the package's own error (``main`` turns it into exit code 2)."""
    result = runner.invoke(app, list(args))
    assert result.exit_code != 0
    assert isinstance(result.exception, BloExchangeError), result.exception
    return str(result.exception)


async def believed(database_url: str, roots: Path) -> DirectoryFacts:
    engine = create_engine(database_url, pool_size=1)
    try:
        directory = SignedDirectory(
            SqlStatementStore(session_factory(engine)),
            load_pinned_roots(roots),
            principals=NoPrincipals(),
        )
        return (await directory.refresh()).facts
    finally:
        await engine.dispose()


def test_two_agencies_set_up_trust_and_an_agreement(
    runner: CliRunner, tmp_path: Path, database_url: str
) -> None:
    # (1) Each agency creates its root on its administrator's machine.
    records = {}
    for agency in (KG, TJ):
        key = tmp_path / f"{agency}.root"
        output = invoke(runner, "agency", "init-root", "--agency", agency, "--out", str(key))
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        assert "private" not in output
        records[agency] = json.loads(output.splitlines()[0])
        (tmp_path / f"{agency}.pub").write_text(json.dumps(records[agency]))
    # (2) Both roots are pinned, each checked against the fingerprint of the MoU annex.
    roots = tmp_path / "pinned-roots.json"
    wrong = refused(
        runner,
        "agency",
        "pin",
        str(roots),
        "--record",
        str(tmp_path / f"{KG}.pub"),
        "--fingerprint",
        "0" * 32,
    )
    assert "fingerprint" in wrong
    for agency in (KG, TJ):
        invoke(
            runner,
            "agency",
            "pin",
            str(roots),
            "--record",
            str(tmp_path / f"{agency}.pub"),
            "--fingerprint",
            records[agency]["key_id"],
        )
    assert set(load_pinned_roots(roots)) == {KG, TJ}
    # (3) KG registers a node and its signing key.
    node_keys = tmp_path / "node-keys"
    public = json.loads(invoke(runner, "keys", "init", "--key-dir", str(node_keys)))
    (tmp_path / "signing.pub").write_text(json.dumps(public[0]))
    kg_root = str(tmp_path / f"{KG}.root")
    invoke(
        runner,
        "agency",
        "sign-node",
        "--root",
        kg_root,
        "--agency",
        KG,
        "--node",
        "blo-dostuk-kg",
        "--border-pair",
        "KG-TJ",
        "--crossing-point",
        "KG-DOSTUK",
        "--out",
        str(tmp_path / "node.json"),
    )
    invoke(
        runner,
        "agency",
        "sign-key",
        "--root",
        kg_root,
        "--agency",
        KG,
        "--owner-kind",
        "node",
        "--owner-id",
        "blo-dostuk-kg",
        "--record",
        str(tmp_path / "signing.pub"),
        "--out",
        str(tmp_path / "node-key.json"),
    )
    # (4) KG proposes an agreement; until TJ signs it, nothing accepts it.
    terms = {
        "id": "mou-kg-tj-dostuk",
        "title": "Dostuk crossing",
        "parties": [KG, TJ],
        "border_pairs": ["KG-TJ"],
        "kinds": ["seizure", "risk", "feedback"],
        "max_tlp": "AMBER",
        "nominal": False,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": None,
        "memorandum_ref": "MoU 2026/7",
    }
    (tmp_path / "terms.json").write_text(json.dumps(terms))
    to_db = ("--roots", str(roots), "--to", "database")
    proposed = tmp_path / "proposed.json"
    invoke(
        runner,
        "agreement",
        "propose",
        str(tmp_path / "terms.json"),
        "--root",
        kg_root,
        "--agency",
        KG,
        "--out",
        str(proposed),
    )
    assert "not yet signed by tj-drug-control-agency" in refused(
        runner, "statement", "verify", str(proposed), "--roots", str(roots)
    )
    refused(runner, "statement", "publish", str(proposed), *to_db)
    signed = tmp_path / "agreement.json"
    shown = invoke(
        runner,
        "agreement",
        "sign",
        str(proposed),
        "--root",
        str(tmp_path / f"{TJ}.root"),
        "--agency",
        TJ,
        "--out",
        str(signed),
        input_="y\n",
    )
    assert "mou-kg-tj-dostuk" in shown
    files = [str(tmp_path / n) for n in ("node.json", "node-key.json", "agreement.json")]
    invoke(runner, "statement", "verify", *files, "--roots", str(roots))
    # (5) Published to a node's database, and believed there.
    assert invoke(runner, "statement", "publish", *files, *to_db).count("published") == 3
    facts = asyncio.run(believed(database_url, roots))
    assert facts.nodes["blo-dostuk-kg"].crossing_points == ("KG-DOSTUK",)
    assert facts.agreements["mou-kg-tj-dostuk"].parties == (KG, TJ)
    assert [k.owner_id for k in facts.keys] == ["blo-dostuk-kg"]


def _roots(runner: CliRunner, tmp_path: Path) -> Path:
    """Both agencies' roots created and pinned (steps 1 and 2 above)."""
    roots = tmp_path / "pinned-roots.json"
    for agency in (KG, TJ):
        key = tmp_path / f"{agency}.root"
        output = invoke(runner, "agency", "init-root", "--agency", agency, "--out", str(key))
        record = json.loads(output.splitlines()[0])
        (tmp_path / f"{agency}.pub").write_text(json.dumps(record))
        invoke(
            runner,
            "agency",
            "pin",
            str(roots),
            "--record",
            str(tmp_path / f"{agency}.pub"),
            "--fingerprint",
            record["key_id"],
        )
    return roots


def test_a_witness_key_and_the_ledger_key_co_signed_by_every_agency(
    runner: CliRunner, tmp_path: Path, database_url: str
) -> None:
    roots = _roots(runner, tmp_path)
    kg_root, tj_root = str(tmp_path / f"{KG}.root"), str(tmp_path / f"{TJ}.root")
    # KG's node and its witness key, as the node prints it.
    node_dir = tmp_path / "node-keys"
    (tmp_path / "witness.pub").write_text(
        invoke(runner, "keys", "witness", "--key-dir", str(node_dir))
    )
    assert stat.S_IMODE((node_dir / "witness.key").stat().st_mode) == 0o600
    node = ("--root", kg_root, "--agency", KG)
    invoke(runner, "agency", "sign-node", *node, "--node", "blo-dostuk-kg",
           "--border-pair", "KG-TJ", "--out", str(tmp_path / "node.json"))  # fmt: skip
    witness = ("--owner-id", "blo-dostuk-kg", "--record", str(tmp_path / "witness.pub"))
    invoke(runner, "agency", "sign-key", *node, "--owner-kind", "witness", *witness,
           "--out", str(tmp_path / "witness-key.json"))  # fmt: skip
    assert "co-signed by every agency" in refused(
        runner, "agency", "sign-key", *node, "--owner-kind", "ledger", *witness,
        "--out", str(tmp_path / "no.json"),
    )  # fmt: skip
    # The ledger writer's key: KG proposes, TJ co-signs; until then it is not in force.
    ledger_pub = tmp_path / "ledger.pub"
    ledger_pub.write_text(
        invoke(runner, "keys", "ledger", "--key-file", str(tmp_path / "hub" / "ledger.key"))
    )
    proposal = ("--origin", "hub.example/ledger", "--record", str(ledger_pub))
    alone = tmp_path / "kg-only.json"
    invoke(runner, "agency", "propose-ledger-key", *node, *proposal, "--member", KG,
           "--out", str(alone))  # fmt: skip
    assert "ledger_key_not_signed_by_every_agency" in refused(
        runner, "statement", "verify", str(alone), "--roots", str(roots)
    )
    proposed = tmp_path / "ledger-key.json"
    invoke(runner, "agency", "propose-ledger-key", *node, *proposal, "--member", KG,
           "--member", TJ, "--out", str(proposed))  # fmt: skip
    assert "not yet signed by tj-drug-control-agency" in refused(
        runner, "statement", "verify", str(proposed), "--roots", str(roots)
    )
    shown = invoke(runner, "agency", "sign-ledger-key", str(proposed), "--root", tj_root,
                   "--agency", TJ, "--out", str(proposed), input_="y\n")  # fmt: skip
    assert "hub.example/ledger" in shown
    files = [str(tmp_path / n) for n in ("node.json", "witness-key.json", "ledger-key.json")]
    invoke(runner, "statement", "verify", *files, "--roots", str(roots))
    invoke(runner, "statement", "publish", *files, "--roots", str(roots), "--to", "database")
    facts = asyncio.run(believed(database_url, roots))
    assert {(k.owner_kind, k.owner_id) for k in facts.keys} == {
        ("witness", "blo-dostuk-kg"),
        ("ledger", "hub.example/ledger"),
    }
