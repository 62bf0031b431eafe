"""The review sheets under docs/i18n/ are the catalogues as they are, and a reviewed sheet goes
back into its catalogue unchanged in every other respect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from blo_exchange.web.i18n_review import SHEETS, apply, sheet
from blo_exchange.web.messages import LANGUAGES

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_review_sheet_is_up_to_date(lang: str) -> None:
    written = (ROOT / SHEETS / f"{lang}.csv").read_text("utf-8")
    assert written == sheet(lang), "run: python -m blo_exchange.web.i18n_review"


def test_a_reviewed_sheet_is_applied(tmp_path: Path) -> None:
    text = sheet("tg").replace("Ворид шудан", "Даромадан")
    path = tmp_path / "tg.csv"
    path.write_text(text, "utf-8")
    assert apply(path, tmp_path) == "tg"
    written = json.loads((tmp_path / "tg.json").read_text("utf-8"))
    original = json.loads((ROOT / "src/blo_exchange/web/i18n/tg.json").read_text("utf-8"))
    assert list(written) == list(original)
    assert written["signin.submit"] == "Даромадан"
    assert {k: v for k, v in written.items() if v != original[k]} == {
        "signin.title": "Даромадан",
        "signin.submit": "Даромадан",
    }


def test_a_sheet_with_unknown_keys_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ky.csv"
    path.write_text(sheet("ky") + "no.such.key,Nothing,Эч нерсе\n", "utf-8")
    with pytest.raises(SystemExit, match=r"no\.such\.key"):
        apply(path, tmp_path)
