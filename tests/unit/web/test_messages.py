"""The catalogues: every English key exists in every other language, with the same placeholders,
and the English vocabulary and marking texts are the domain's own; the new catalogues keep their
alphabets (Uzbek Latin o and g with a turned comma, no Russian-only letters in Tajik, no stray
English)."""

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
        ("de", "en"),
        ("ru;q=bogus", "en"),
        ("tg", "tg"),
        ("tg-TJ,ru;q=0.8", "tg"),
        ("ky-KG", "ky"),
        ("uz", "uz-Latn"),
        ("uz-UZ", "uz-Latn"),
        ("uz-Latn-UZ", "uz-Latn"),
        ("uz-Cyrl", "uz-Cyrl"),
        ("UZ-cyrl-uz", "uz-Cyrl"),
        ("en;q=0.5,uz-Cyrl-UZ;q=0.9", "uz-Cyrl"),
        ("*", "en"),
    ],
)
def test_negotiate(header: str | None, lang: str) -> None:
    assert negotiate(header) == lang


CYRILLIC = ("ru", "tg", "ky", "uz-Cyrl")
CODES = {
    *("BLO", "C", "CAS", "CSV", "Ed", "H", "HTTPS", "ID", "JavaScript", "RFC", "SHA", "TJ"),
    *("TLP", "UNODC", "WebCrypto", "x"),
    *("GPS", "JPEG", "PDF", "PNG", "WebP"),  # file formats and the location they strip
    *("blo", "exchange", "cookie", "directory", "ledger", "principals", "verify"),  # commands
}
TURNED_COMMA = "\N{LEFT SINGLE QUOTATION MARK}"  # U+2018 after o and g, as CLDR writes Uzbek
APOSTROPHE = "\N{RIGHT SINGLE QUOTATION MARK}"  # the tutuq belgisi (U+2019)
NOT_UZBEK_LATIN = "'`\N{MODIFIER LETTER TURNED COMMA}\N{MODIFIER LETTER APOSTROPHE}"


def words(text: str) -> set[str]:
    return set(re.findall(r"[A-Za-z]+", re.sub(r"\{[a-z_]+\}", "", text)))


SAME_IN_UZBEK_LATIN = {"role.auditor", "role.admin"}  # "Auditor", "Administrator" are Uzbek too


def test_all_six_languages_are_offered() -> None:
    assert list(LANGUAGES) == ["en", "ru", "tg", "uz-Latn", "uz-Cyrl", "ky"]


@pytest.mark.parametrize("lang", [lang for lang in LANGUAGES if lang != "en"])
def test_nothing_is_left_in_english(lang: str) -> None:
    """A message equal to its English source may only be codes and punctuation ("TLP", "—")."""
    english = load("en")
    for key, text in load(lang).items():
        if text == english[key] and not (lang == "uz-Latn" and key in SAME_IN_UZBEK_LATIN):
            assert not re.search(r"[a-z]{3,}", re.sub(r"\{[a-z_]+\}", "", text)), (key, text)


@pytest.mark.parametrize("lang", CYRILLIC)
def test_cyrillic_catalogues_carry_latin_letters_only_in_codes(lang: str) -> None:
    for key, text in load(lang).items():
        assert words(text) <= CODES, (key, sorted(words(text) - CODES))


def test_tajik_uses_tajik_letters() -> None:
    tg = "".join(load("tg").values())
    assert not set("цщыьЦЩЫЬ") & set(tg)  # Russian letters the Tajik alphabet does not have
    assert set("ӣӯқғҳҷ") <= set(tg.lower())


def test_kyrgyz_uses_kyrgyz_letters() -> None:
    assert set("ңөү") <= set("".join(load("ky").values()).lower())


def test_uzbek_latin_writes_o_and_g_with_the_turned_comma() -> None:
    """The turned comma U+2018 follows only o and g, and the tutuq belgisi is U+2019, as CLDR
    writes them; an ASCII quote, a backtick or U+02BB mixed in would make one word two spellings."""
    for key, text in load("uz-Latn").items():
        assert not set(NOT_UZBEK_LATIN) & set(text), key
        assert not re.search(f"(?<![oOgG]){TURNED_COMMA}", text), key
        assert not re.search(r"[\u0400-\u04ff]", text), key  # no Cyrillic letter


def test_uzbek_cyrillic_has_no_latin_digraphs_left() -> None:
    for key, text in load("uz-Cyrl").items():
        assert not {TURNED_COMMA, APOSTROPHE} & set(text), key
