"""Setting up a node with the CLI alone, as an operator would, against a real Postgres."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import stat
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.crypto.certs import certificate_sha256
from blo_exchange.db.engine import migrate


@pytest.fixture
def runner(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    asyncio.run(migrate(database_url))
    monkeypatch.setenv("BLO_DATABASE_URL", database_url)
    return CliRunner()


def invoke(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_operator_sets_up_a_node(runner: CliRunner, tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    records = invoke(runner, "keys", "init", "--key-dir", str(keys))
    assert stat.S_IMODE((keys / "signing.key").stat().st_mode) == 0o600
    assert "private" not in records
    public = tmp_path / "public.json"
    public.write_text(records)

    invoke(runner, "directory", "add-agency", "kg-customs", "--country", "KG", "--name", "Customs")
    invoke(
        runner,
        "directory",
        "add-node",
        "blo-dostuk-kg",
        "--agency",
        "kg-customs",
        "--border-pair",
        "KG-UZ",
        "--crossing-point",
        "KG-DOSTUK",
    )
    assert "1 key(s)" in invoke(
        runner, "directory", "register-keys", "--owner-kind", "node", "--owner-id",
        "blo-dostuk-kg", str(public),
    )  # fmt: skip
    assert "1 key(s)" in invoke(
        runner, "directory", "register-keys", "--owner-kind", "agency", "--owner-id",
        "kg-customs", str(public),
    )  # fmt: skip
    agreement = tmp_path / "agreement.json"
    agreement.write_text(
        json.dumps(
            {
                "id": "mou-kg-uz-2026",
                "title": "KG-UZ",
                "parties": ["kg-customs", "uz-customs-committee"],
                "border_pairs": ["KG-UZ"],
                "kinds": ["seizure"],
                "max_tlp": "AMBER",
                "nominal": False,
                "valid_from": "2026-01-01T00:00:00Z",
                "memorandum_ref": "MoU 7",
            }
        )
    )
    invoke(runner, "directory", "put-agreement", str(agreement))
    token = invoke(
        runner, "principals", "create", "--role", "terminal", "--label", "post 1",
        "--node", "blo-dostuk-kg",
    ).strip()  # fmt: skip
    assert token.startswith("blo_")
    assert len(token) >= 40  # 256 bits, base64url
    pem = tmp_path / "terminal.pem"
    pem.write_bytes(self_signed_pem())
    registered = invoke(
        runner, "principals", "create", "--role", "terminal", "--label", "post 2",
        "--node", "blo-dostuk-kg", "--cert", str(pem),
    )  # fmt: skip
    assert f"certificate sha256 {certificate_sha256(pem.read_bytes())} registered" in registered

    shown = json.loads(invoke(runner, "directory", "show"))
    assert [n["id"] for n in shown["nodes"]] == ["blo-dostuk-kg"]
    assert {k["owner_kind"] for k in shown["keys"]} == {"node", "agency"}
    assert shown["agreements"][0]["id"] == "mou-kg-uz-2026"

    listing = invoke(runner, "directory", "principals")
    assert token not in listing
    principal_id = listing.split("\t")[0]
    invoke(runner, "directory", "revoke-principal", principal_id)
    assert "revoked" in invoke(runner, "directory", "principals")
    key_id = shown["keys"][0]["key_id"]
    invoke(runner, "directory", "revoke-key", key_id)
    revoked = json.loads(invoke(runner, "directory", "show"))["keys"]
    assert [k["revoked_at"] is not None for k in revoked if k["key_id"] == key_id] == [True]


def self_signed_pem() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "post 2")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM)


def test_bad_input_is_a_clear_error(runner: CliRunner) -> None:
    result = runner.invoke(
        app, ["directory", "add-agency", "kg-x", "--country", "TJ", "--name", "n"]
    )
    assert result.exit_code != 0
