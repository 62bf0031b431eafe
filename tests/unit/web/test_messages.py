"""The catalogues: every English key exists in every other language, with the same placeholders,
and the English vocabulary and marking texts are the domain's own."""

from __future__ import annotations

import json
import re
import string
from importlib import resources

import pytest

from blo_exchange.domain import marking, vocab
from blo_exchange.web.messages import LANGUAGES, catalogue, negotiate


def load(lang: str) -> dict[str, str]:
    text = resources.files("blo_exchange.web").joinpath("i18n", f"{lang}.json").read_text()
    data: dict[str, str] = json.loads(text)
    return data


def placeholders(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_every_english_key_is_translated_with_the_same_placeholders(lang: str) -> None:
    english, other = load("en"), load(lang)
    assert sorted(set(english) - set(other)) == []
    assert sorted(set(other) - set(english)) == []
    for key, text in english.items():
        assert placeholders(other[key]) == placeholders(text), key
        assert other[key].strip(), key


def test_english_vocabulary_and_markings_are_the_domains_own() -> None:
    english = load("en")
    for cls in vocab.Vocabulary.__subclasses__():
        for value, label in vocab.labels(cls).items():
            assert english[f"vocab.{cls.__name__}.{value}"] == label
    for tlp, text in marking.TLP_LABELS.items():
        assert english[f"tlp.{tlp.value}"] == text
    for scheme, codes in marking.HANDLING_LABELS.items():
        for code, text in codes.items():
            assert english[f"handling.{scheme}.{code}"] == text
    for scheme, axes in marking.GRADING_LABELS.items():
        for axis, codes in axes.items():
            for code, text in codes.items():
                assert english[f"grading.{scheme}.{axis}.{code}"] == text


def test_tlp_codes_are_never_translated() -> None:
    for lang in LANGUAGES:
        for text in load(lang).values():
            for code in re.findall(r"TLP:([A-Z+]+)", text):
                assert code in {t.value for t in marking.Tlp}


def test_catalogue_formats_and_falls_back() -> None:
    ru = catalogue("ru")
    assert ru("officer.item", n=2) == "Предмет 2"
    assert catalogue("xx").lang == "en"
    assert ru("no.such.key") == "no.such.key"


@pytest.mark.parametrize(
    ("header", "lang"),
    [
        (None, "en"),
        ("ru", "ru"),
        ("ru-RU,ru;q=0.9,en-US;q=0.8", "ru"),
        ("de-DE,en;q=0.3,ru;q=0.5", "ru"),
        ("ru;q=0,en", "en"),
        ("tg", "en"),
        ("ru;q=bogus", "en"),
    ],
)
def test_negotiate(header: str | None, lang: str) -> None:
    assert negotiate(header) == lang
