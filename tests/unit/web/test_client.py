"""``blo-exchange alerts send`` and ``feed tail`` without a node: local checks, formatting,
the SSE parser, and the error for a node that cannot be reached."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner

from blo_exchange.cli.client import _events, format_alert
from blo_exchange.cli.main import app
from blo_exchange.domain.examples import EXAMPLE_SEIZURE

runner = CliRunner()
TOKEN = "blo_secret-token-value"


def test_an_invalid_alert_file_is_named_field_by_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({**EXAMPLE_SEIZURE, "tlp": "PURPLE"}))
    result = runner.invoke(
        app, ["alerts", "send", str(bad), "--url", "http://127.0.0.1:9", "--token", TOKEN]
    )
    assert result.exit_code == 2
    assert "tlp" in result.output
    assert "not a valid alert" in result.output
    assert TOKEN not in result.output
    (tmp_path / "text.json").write_text("{not json")
    result = runner.invoke(
        app, ["alerts", "send", str(tmp_path / "text.json"), "--url", "x", "--token", TOKEN]
    )
    assert result.exit_code == 2
    assert "not JSON" in result.output


def test_an_unreachable_node_is_exit_3(tmp_path: Path) -> None:
    good = tmp_path / "alert.json"
    good.write_text(json.dumps(EXAMPLE_SEIZURE))
    result = runner.invoke(
        app,
        ["alerts", "send", str(good), "--url", "http://127.0.0.1:9", "--token", TOKEN],
        env={"BLO_TOKEN": ""},
    )
    assert result.exit_code == 3
    assert "cannot reach http://127.0.0.1:9" in result.output
    assert TOKEN not in result.output


def test_sse_parser() -> None:
    lines = ["retry: 2000", "", ": keep-alive", "", "id: 7", "event: alert", "data: {}", ""]
    assert list(_events(iter(lines))) == [("7", "alert", "{}")]


def test_format_alert_colours_by_tlp() -> None:
    alert = {
        "alert_id": "a1",
        "header": {
            "tlp": "RED",
            "created_at": "2026-11-28T06:40:00.000Z",
            "border_pair": "KG-TJ",
            "kind": "seizure",
            "crossing_point": "KG-KARAMYK",
            "origin_agency": "kg-border-service",
        },
        "case": EXAMPLE_SEIZURE["case"],
    }
    plain = format_alert(alert, colour=False)
    assert plain.startswith("TLP:RED 2026-11-28T06:40:00.000Z KG-TJ seizure KG-KARAMYK")
    assert "12.5 kg heroin" in plain
    assert plain.endswith("[a1]")
    coloured = format_alert(alert, colour=True)
    assert typer.style("TLP:RED", fg=typer.colors.BRIGHT_RED, bg=typer.colors.BLACK, bold=True) in (
        coloured
    )


def test_feed_tail_waits_out_a_503_and_resumes_from_its_position(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    alert = {
        "alert_id": "019a0000-0000-7000-8000-000000000001",
        "feed_seq": 8,
        "header": {"kind": "seizure"},
    }
    answers = [
        httpx.Response(503, headers={"Retry-After": "2"}, json={"detail": "db down"}),
        httpx.Response(200, text=f"id: 8\nevent: alert\ndata: {json.dumps(alert)}\n\n"),
    ]
    asked: list[str] = []
    slept: list[float] = []

    @contextlib.contextmanager
    def stream(method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
        asked.append(kwargs["headers"]["Last-Event-ID"])
        if not answers:
            raise KeyboardInterrupt
        yield answers.pop(0)

    monkeypatch.setattr(httpx, "stream", stream)
    monkeypatch.setattr(time, "sleep", slept.append)
    result = runner.invoke(
        app,
        ["feed", "tail", "--url", "http://node", "--token", TOKEN, "--cursor", "7", "--json"],
    )
    assert result.exit_code == 0, result.output
    assert asked == ["7", "7", "8"]  # the same position after the 503, the next after the alert
    assert slept == [2.0]
    assert json.loads(result.stdout.splitlines()[0])["feed_seq"] == 8
