"""Numbers, months and times by CLDR rules in each of the six languages."""

from __future__ import annotations

import pytest

from blo_exchange.web.formatting import Formats
from blo_exchange.web.messages import LANGUAGES

NBSP = "\xa0"


@pytest.mark.parametrize(
    ("lang", "number", "month"),
    [
        ("en", "12,345.5", "November 2026"),
        ("ru", f"12{NBSP}345,5", "ноябрь 2026"),
        ("tg", f"12{NBSP}345,5", "Ноябр 2026"),
        ("uz-Latn", f"12{NBSP}345,5", "Noyabr 2026"),
        ("uz-Cyrl", f"12{NBSP}345,5", "ноябр 2026"),
        ("ky", f"12{NBSP}345,5", "Ноябрь 2026"),
    ],
)
def test_numbers_and_months(lang: str, number: str, month: str) -> None:
    fmt = Formats(lang)
    assert fmt.number("12345.500") == number
    assert fmt.month("2026-11") == month
    symbols = fmt.symbols()
    assert fmt.number("1000.25") == f"1{symbols['number.group']}000{symbols['number.decimal']}25"


def test_decimals_stay_exact() -> None:
    assert Formats("en").number("0.000001") == "0.000001"
    assert Formats("en").number("123456789.123456") == "123,456,789.123456"
    assert Formats("ru").number(1200) == f"1{NBSP}200"


@pytest.mark.parametrize("lang", list(LANGUAGES))
def test_times_are_in_utc_and_say_so(lang: str) -> None:
    text = Formats(lang).datetime("2026-11-28T06:40:00Z")
    assert text.endswith(" UTC")
    assert "2026" in text
    assert "06:40" in text or "6:40" in text


def test_unparseable_times_are_shown_as_they_are() -> None:
    assert Formats("tg").datetime("not a time") == "not a time"
    assert Formats("tg").date("1990-13-01") == "1990-13-01"
    assert Formats("ky").date("1990-05-01") == "1990-ж., 1-май"
