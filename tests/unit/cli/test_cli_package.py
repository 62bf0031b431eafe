"""``blo-exchange package``: bad input is refused before any database or key is touched."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from blo_exchange.cli.main import app

runner = CliRunner()
NO_NODE = {"BLO_DATABASE_URL": "postgresql+asyncpg://nobody@127.0.0.1:1/none"}


def test_export_refuses_a_time_that_is_not_rfc3339(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        ["package", "export", "--since", "yesterday", "--for", "x", "--to", str(tmp_path / "p")],
        env=NO_NODE,
    )
    assert result.exit_code == 2
    assert "--since/--until" in result.output
    assert not (tmp_path / "p").exists()


def test_import_refuses_a_file_that_is_not_there(tmp_path: Path) -> None:
    result = runner.invoke(app, ["package", "import", str(tmp_path / "none.blopkg")], env=NO_NODE)
    assert result.exit_code == 2
    assert "none.blopkg" in result.output
