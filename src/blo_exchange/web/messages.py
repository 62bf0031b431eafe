"""Message catalogues of the web pages: one flat JSON object per language under ``i18n/``.

English is the reference: every key it has, every other catalogue must have too (a unit test
holds them to it), so adding a language is adding ``<tag>.json`` and one line in
:data:`LANGUAGES`. Codes that travel on the wire (TLP labels, handling and grading codes,
vocabulary values) are never translated; only the explanations beside them are.

Language codes are BCP 47 tags as the catalogue files are named (``uz-Latn``, ``uz-Cyrl``);
:func:`negotiate` maps what browsers send (``uz``, ``uz-UZ``, ``uz-Cyrl-UZ``, ``ky-KG``) onto them.

Not here: formatting dates and numbers (``formatting``, with CLDR data through babel).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

__all__ = [
    "DEFAULT_LANGUAGE",
    "LANGUAGES",
    "Catalogue",
    "catalogue",
    "match",
    "negotiate",
]

LANGUAGES: Final[Mapping[str, str]] = {
    "en": "English",
    "ru": "Русский",
    "tg": "Тоҷикӣ",
    "uz-Latn": "O\N{LEFT SINGLE QUOTATION MARK}zbekcha",
    "uz-Cyrl": "Ўзбекча",
    "ky": "Кыргызча",
}
"""Language code to its own name, in the order the switcher shows them."""

DEFAULT_LANGUAGE: Final = "en"

_DEFAULT_SCRIPT: Final[Mapping[str, str]] = {"uz": "uz-Latn"}
"""A bare language whose catalogues come in several scripts: Uzbek is written in Latin letters
by law since 1993 (Cyrillic is still common, and asked for as ``uz-Cyrl``)."""

_BY_LOWER: Final[Mapping[str, str]] = {code.lower(): code for code in LANGUAGES}


@dataclass(frozen=True)
class Catalogue:
    lang: str
    messages: Mapping[str, str]

    def __call__(self, key: str, **values: object) -> str:
        """The message for ``key`` with ``{name}`` placeholders filled; the key itself if missing
        (visible in the page and caught by the completeness test, never a crash)."""
        text = self.messages.get(key)
        if text is None:
            text = _load(DEFAULT_LANGUAGE).get(key, key)
        return text.format(**values) if values else text

    def has(self, key: str) -> bool:
        return key in self.messages

    def subset(self, prefix: str) -> dict[str, str]:
        """The messages under ``prefix`` (for the scripts, which render live rows themselves)."""
        return {k: v for k, v in self.messages.items() if k.startswith(prefix)}


@cache
def _load(lang: str) -> dict[str, str]:
    text = resources.files(__package__).joinpath("i18n", f"{lang}.json").read_text("utf-8")
    data = json.loads(text)
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise ValueError(f"i18n/{lang}.json must be a flat object of strings")
    return data


def catalogue(lang: str) -> Catalogue:
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    return Catalogue(lang, _load(lang))


def match(tag: str) -> str | None:
    """The catalogue for one BCP 47 tag: the longest prefix we have (``uz-Cyrl-UZ`` → ``uz-Cyrl``),
    else the language's default script (``uz-UZ`` → ``uz-Latn``); None if we have none."""
    subtags = tag.strip().lower().replace("_", "-").split("-")
    for end in range(len(subtags), 0, -1):
        found = _BY_LOWER.get("-".join(subtags[:end]))
        if found is not None:
            return found
    return _DEFAULT_SCRIPT.get(subtags[0])


def negotiate(accept_language: str | None) -> str:
    """The best-ranked language of an ``Accept-Language`` header that we have, else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        found = match(tag)
        if found is not None and quality > 0:
            ranked.append((-quality, position, found))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE
