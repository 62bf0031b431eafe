"""``blo-exchange stix export --from-file``: the offline path, with no node."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.interop.stix import report_id
from tests.unit.interop.stix_check import assert_valid_stix
from tests.unit.interop.test_stix import RISK_ID, SEIZURE_ID, feed_item

runner = CliRunner()


def saved_feed(tmp_path: Path) -> Path:
    """A page of GET /v1/feed as an analyst would save it: a seizure and, later, a risk."""
    seizure = feed_item(EXAMPLE_SEIZURE, SEIZURE_ID)
    risk = feed_item(EXAMPLE_RISK, RISK_ID)
    risk["header"]["created_at"] = "2026-11-29T08:00:00.000Z"
    path = tmp_path / "feed.json"
    path.write_text(json.dumps({"items": [seizure, risk], "next_cursor": 8}))
    return path


def export(*args: str) -> tuple[int, str]:
    env = {"BLO_URL": None, "BLO_TOKEN": None}
    result = runner.invoke(app, ["stix", "export", *args], env=env)
    return result.exit_code, result.output


def test_one_alert_from_a_saved_feed_is_a_valid_stable_bundle(tmp_path: Path) -> None:
    feed = saved_feed(tmp_path)
    code, text = export("--from-file", str(feed), "--alert", SEIZURE_ID)
    assert code == 0, text
    first = json.loads(text)
    assert_valid_stix(first["objects"])
    ids = {o["id"] for o in first["objects"]}
    assert report_id(SEIZURE_ID) in ids
    assert report_id(RISK_ID) not in ids
    assert json.loads(export("--from-file", str(feed), "--alert", SEIZURE_ID)[1]) == first


def test_a_time_range_selects_by_creation_time(tmp_path: Path) -> None:
    feed = saved_feed(tmp_path)
    out = tmp_path / "bundle.json"
    args = ["--from-file", str(feed), "--since", "2026-11-29T00:00:00Z", "--out", str(out)]
    code, text = export(*args)
    assert code == 0, text
    objects = json.loads(out.read_text())["objects"]
    assert_valid_stix(objects)
    reports = {o["id"] for o in objects if o["type"] == "report"}
    assert reports == {report_id(RISK_ID)}


def test_refusals(tmp_path: Path) -> None:
    feed = saved_feed(tmp_path)
    assert export()[0] == 2  # nothing to select
    assert export("--alert", SEIZURE_ID)[0] == 2  # no node, no file
    assert export("--alert", SEIZURE_ID, "--since", "2026-11-29T00:00:00Z")[0] == 2
    assert export("--from-file", str(feed), "--since", "yesterday")[0] == 2
    unknown = "0190f3a0-0000-7000-8000-0000000000ff"
    assert export("--from-file", str(feed), "--alert", unknown)[0] == 1
    bad = tmp_path / "bad.json"
    bad.write_text('{"items": [{"alert_id": "x", "header": {}, "case": {}}]}')
    assert export("--from-file", str(bad))[0] == 2
