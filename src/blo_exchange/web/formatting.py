"""Dates, months and numbers in the reader's language, by CLDR rules (babel's copy of CLDR).

The standard library formats neither Tajik nor Kyrgyz month names nor their digit grouping, and
browsers' ``Intl`` data differ in which of these languages they carry, so the pages render such
text here, on the server. Times are shown in UTC and say so; the browser may still re-render a
``<time>`` in its own zone when its ``Intl`` knows the page's language (``static/common.js``).

Not here: which language a reader gets (``messages``).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache

from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, get_decimal_symbol, get_group_symbol

__all__ = ["Formats", "locale_of"]


@cache
def locale_of(lang: str) -> Locale:
    """The CLDR locale of a catalogue code: ``uz-Latn`` → ``uz_Latn``."""
    return Locale.parse(lang, sep="-")


class Formats:
    """The formats of one language; templates get it as ``fmt``."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self._locale = locale_of(lang)

    def number(self, value: int | Decimal | str) -> str:
        """``12345.5`` → ``12 345,5`` in Russian; decimals are kept exact (never a float)."""
        return format_decimal(Decimal(value), format="#,##0.######", locale=self._locale)

    def symbols(self) -> dict[str, str]:
        """The decimal and group separators, for scripts that format numbers themselves."""
        return {
            "number.decimal": get_decimal_symbol(self._locale),
            "number.group": get_group_symbol(self._locale),
        }

    def month(self, value: str) -> str:
        """``"2026-11"`` → ``"November 2026"`` (the stand-alone month name)."""
        year, month = value.split("-")
        return format_date(date(int(year), int(month), 1), "LLLL y", locale=self._locale)

    def datetime(self, value: str) -> str:
        """An RFC 3339 time as medium date and time, in UTC; unparseable text is shown as is."""
        try:
            moment = datetime.fromisoformat(value)
        except (TypeError, ValueError):
            return str(value)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        text = format_datetime(moment, "medium", tzinfo=UTC, locale=self._locale)
        return f"{text} UTC"

    def date(self, value: str) -> str:
        """An ISO date (``1990-05-01``) as a medium date."""
        try:
            day = date.fromisoformat(value)
        except (TypeError, ValueError):
            return str(value)
        return format_date(day, "medium", locale=self._locale)
