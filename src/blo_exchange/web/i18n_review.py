"""Review sheets of the catalogues: one CSV per language, each message beside its English source.

A native speaker reviews a language by opening ``docs/i18n/<lang>.csv`` in a spreadsheet (UTF-8,
with a byte-order mark so that Excel reads it as such), correcting the last column, and giving
the file back; ``python -m blo_exchange.web.i18n_review --apply docs/i18n/<lang>.csv`` writes the
corrections into ``i18n/<lang>.json``. ``python -m blo_exchange.web.i18n_review`` rewrites every
sheet from the catalogues; a unit test fails while a sheet is out of date.

The catalogues stay flat ``key → text`` objects (what the pages load); the sheets are the
reviewers' view of them, so the English column is always the current English, never a copy
that drifted.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from importlib import resources
from pathlib import Path
from typing import Final

from blo_exchange.web.messages import DEFAULT_LANGUAGE, LANGUAGES

__all__ = ["SHEETS", "apply", "main", "sheet"]

SHEETS: Final = Path("docs") / "i18n"
"""Where the sheets live, relative to the repository root."""

_HEADER: Final = ("key", "english")


def _catalogue(lang: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath("i18n", f"{lang}.json").read_text("utf-8")
    data: dict[str, str] = json.loads(text)
    return data


def sheet(lang: str) -> str:
    """The review sheet of ``lang``: key, English, and the translation, in English key order."""
    english, other = _catalogue(DEFAULT_LANGUAGE), _catalogue(lang)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow((*_HEADER, f"{lang} ({LANGUAGES[lang]})"))
    for key, text in english.items():
        writer.writerow((key, text, other.get(key, "")))
    return "\ufeff" + out.getvalue()


def apply(path: Path, catalogues: Path) -> str:
    """Write the last column of a reviewed sheet into its catalogue; returns the language."""
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    lang = path.stem
    if lang not in LANGUAGES or lang == DEFAULT_LANGUAGE or tuple(rows[0][:2]) != _HEADER:
        raise SystemExit(f"{path} is not a review sheet of a translated language")
    english = _catalogue(DEFAULT_LANGUAGE)
    reviewed = {row[0]: row[2] for row in rows[1:] if len(row) == 3}
    unknown = sorted(set(reviewed) - set(english))
    if unknown:
        raise SystemExit(f"{path}: keys that English does not have: {', '.join(unknown)}")
    merged = {key: reviewed.get(key, "") for key in english}
    target = catalogues / f"{lang}.json"
    target.write_text(json.dumps(merged, ensure_ascii=False, indent=1) + "\n", "utf-8")
    return lang


def main(argv: list[str]) -> None:
    root = Path.cwd()
    catalogues = Path(str(resources.files(__package__).joinpath("i18n")))
    if argv[:1] == ["--apply"]:
        for name in argv[1:]:
            print(f"{apply(Path(name), catalogues)}.json updated; run the unit tests")
        return
    (root / SHEETS).mkdir(parents=True, exist_ok=True)
    for lang in LANGUAGES:
        if lang != DEFAULT_LANGUAGE:
            (root / SHEETS / f"{lang}.csv").write_text(sheet(lang), "utf-8", newline="")


if __name__ == "__main__":
    main(sys.argv[1:])
