"""``agreement propose``: a nominal agreement must state its nominal retention."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.crypto.roots import create_root_key
from blo_exchange.crypto.statements import UnverifiedStatement

runner = CliRunner()
KG = "kg-border-service"
TERMS = {
    "id": "mou-kg-tj-dostuk",
    "title": "Dostuk crossing",
    "parties": [KG, "tj-drug-control-agency"],
    "border_pairs": ["KG-TJ"],
    "kinds": ["seizure"],
    "max_tlp": "AMBER",
    "nominal": True,
    "valid_from": "2026-01-01T00:00:00Z",
    "valid_until": None,
    "memorandum_ref": "MoU 2026/7",
}


def propose(tmp_path: Path, terms: dict[str, object], *options: str) -> tuple[int, str, Path]:
    root = tmp_path / "kg.root"
    if not root.exists():
        create_root_key(root)
    (tmp_path / "terms.json").write_text(json.dumps(terms))
    out = tmp_path / "proposed.json"
    result = runner.invoke(
        app,
        [
            "agreement",
            "propose",
            str(tmp_path / "terms.json"),
            "--root",
            str(root),
            "--agency",
            KG,
            "--out",
            str(out),
            *options,
        ],
    )
    return result.exit_code, result.output + str(result.exception or ""), out


def test_a_nominal_agreement_needs_its_retention(tmp_path: Path) -> None:
    code, output, out = propose(tmp_path, TERMS)
    assert code != 0
    assert "--nominal-retention-days" in output
    assert not out.exists()
    code, output, out = propose(
        tmp_path,
        TERMS,
        "--nominal-retention-days",
        "30",
        "--nominal-retention-max-days",
        "90",
    )
    assert code == 0, output
    body = UnverifiedStatement.parse(out.read_bytes().rstrip(b"\n")).body["agreement"]
    assert (body["nominal_retention_days"], body["nominal_retention_max_days"]) == (30, 90)


def test_a_non_nominal_agreement_states_none(tmp_path: Path) -> None:
    code, _, out = propose(tmp_path, TERMS | {"nominal": False})
    assert code == 0
    body = UnverifiedStatement.parse(out.read_bytes().rstrip(b"\n")).body["agreement"]
    assert "nominal_retention_days" not in body
    code, _, _ = propose(tmp_path, TERMS | {"nominal": False}, "--nominal-retention-days", "30")
    assert code != 0
