"""Message catalogues of the web pages: one flat JSON object per language under ``i18n/``.

English is the reference: every key it has, every other catalogue must have too (a unit test
holds them to it), so adding Tajik, Uzbek or Kyrgyz is adding ``tg.json`` and one line in
:data:`LANGUAGES`. Codes that travel on the wire (TLP labels, handling and grading codes,
vocabulary values) are never translated; only the explanations beside them are.

Not here: formatting dates (the browser does that with ``Intl``, in the reader's locale).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Catalogue", "catalogue", "negotiate"]

LANGUAGES: Final[Mapping[str, str]] = {"en": "English", "ru": "Русский"}
"""Language code to its own name, in the order the switcher shows them."""

DEFAULT_LANGUAGE: Final = "en"


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


def negotiate(accept_language: str | None) -> str:
    """The first language of an ``Accept-Language`` header that we have, else English."""
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        primary = tag.strip().lower().split("-")[0]
        if primary in LANGUAGES and quality > 0:
            ranked.append((-quality, position, primary))
    return min(ranked)[2] if ranked else DEFAULT_LANGUAGE
