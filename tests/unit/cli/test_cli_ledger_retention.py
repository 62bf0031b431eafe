"""``blo-exchange ledger retention``: the auditors' report as CSV, exit 1 when anything is
overdue, 2 when the node refuses (the HTTP call is replaced; the endpoint is tested on real
servers in tests/integration/test_retention.py)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from blo_exchange.cli.main import app

runner = CliRunner()
REPORT: dict[str, Any] = {
    "at": "2027-02-01T00:00:00.000Z",
    "agreements": [
        {
            "agreement_id": "mou-kg-tj-2026",
            "erased": [
                {
                    "alert_id": "a1",
                    "node": "blo-karamyk-tj",
                    "agency": "tj-drug-control-agency",
                    "erased_at": "2027-01-04T00:00:01.000Z",
                    "ledger_index": 7,
                }
            ],
            "overdue": [],
            "retained": 1,
        }
    ],
    "refused_extensions": [],
}


def answer(
    monkeypatch: pytest.MonkeyPatch, status: int, body: dict[str, Any]
) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = []

    def get(url: str, **kwargs: Any) -> httpx.Response:
        calls.append({"url": url, **kwargs})
        return httpx.Response(status, json=body)

    monkeypatch.setattr(httpx, "get", get)
    return calls


def test_prints_erasures_and_exits_0_when_nothing_is_overdue(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = answer(monkeypatch, 200, REPORT)
    result = runner.invoke(
        app, ["ledger", "retention", "--url", "https://kg.example/", "--token", "t"]
    )
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "agreement_id,status,alert_id,node,agency,at",
        "mou-kg-tj-2026,erased,a1,blo-karamyk-tj,tj-drug-control-agency,2027-01-04T00:00:01.000Z",
    ]
    assert calls[0]["url"] == "https://kg.example/v1/ledger/retention"
    assert calls[0]["headers"] == {"Authorization": "Bearer t"}


def test_exits_1_when_overdue_and_2_when_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    late = {"alert_id": "a2", "node": "n", "agency": "x", "expired_at": "2027-01-05T00:00:00Z"}
    overdue = REPORT | {"agreements": [REPORT["agreements"][0] | {"overdue": [late]}]}
    answer(monkeypatch, 200, overdue)
    args = ["ledger", "retention", "--url", "https://kg.example", "--token", "t"]
    result = runner.invoke(app, [*args, "--at", "2027-02-01T00:00:00Z"])
    assert result.exit_code == 1
    assert "mou-kg-tj-2026,overdue,a2,n,x,2027-01-05T00:00:00Z" in result.output
    answer(monkeypatch, 403, {"detail": "the ledger is for auditors"})
    assert runner.invoke(app, args).exit_code == 2
    assert runner.invoke(app, args[:-2]).exit_code == 2  # no token
