"""Match keys: spellings of one name, plate, document or phone across Cyrillic and Latin meet;
different ones do not."""

# ruff: noqa: RUF001, RUF003
from __future__ import annotations

import pytest

from blo_exchange.domain.transliteration import (
    FieldKind,
    company_keys,
    keys_for,
    name_keys,
    phone_key,
    plate_key,
)


@pytest.mark.parametrize(
    "spellings",
    [
        # Russian (ICAO 9303), passport Latin, Uzbek Latin, Tajik and Uzbek Cyrillic.
        ["Рахимов", "RAKHIMOV", "Rahimov", "Raximov", "Раҳимов", "rakhimov"],
        ["Жўраев", "Jo'rayev", "Joʻrayev", "Джураев", "DZHURAEV", "Djuraev", "Juraev"],
        ["Алиев", "ALIEV", "Aliyev", "Aliev"],
        ["Евгений", "Yevgeniy", "EVGENII", "Evgeny"],
        ["Ғуломов", "G‘ulomov", "Gʻulomov", "Ghulomov", "Gulomov"],
        ["Қодиров", "Qodirov", "Kodirov", "Қодиров"],
        ["Юсупов", "Yusupov", "IUSUPOV", "Iusupov"],
        ["Хўжаев", "Xo'jayev", "Hujaev"],
        ["Ҳоҷиев", "Hojiev", "Khodjiev"],
        ["Шукуров", "SHUKUROV", "Shukurov", "Şukurov"],
        ["Өмүрбеков", "Ömürbekov", "Omurbekov", "OMURBEKOV"],  # Kyrgyz ө ү
        ["Раҳмонӣ", "Rahmoni", "RAHMONI"],  # Tajik ӣ
        ["Бахтиёр", "BAKHTIER", "Bakhtiyor", "Baxtiyor", "Баҳтиёр"],  # ё as E or YO
        ["Пётр", "PETR", "Pyotr"],
    ],
)
def test_spellings_of_one_name_meet(spellings: list[str]) -> None:
    keys = {name_keys(s) for s in spellings}
    assert len(keys) == 1, keys
    assert next(iter(keys))  # not empty


@pytest.mark.parametrize(
    ("one", "other"),
    [("Рахимов", "Каримов"), ("Rahimov", "Rahmonov"), ("Aliev", "Aliyeva"), ("Юсупов", "Юнусов")],
)
def test_different_names_do_not_meet(one: str, other: str) -> None:
    assert name_keys(one) != name_keys(other)


def test_a_full_name_gives_one_key_per_word_and_initials_none() -> None:
    assert name_keys("Рахимов Алишер Б.") == {"rahimov", "alisher"}
    assert name_keys("RAKHIMOV, Alisher") == {"rahimov", "alisher"}
    assert name_keys(" . - ") == frozenset()


def test_plates_with_cyrillic_look_alikes_spaces_and_dashes_meet() -> None:
    latin = plate_key("01A123BC")
    assert latin == "01A123BC"
    assert plate_key("01\u0410123\u0412\u0421") == latin  # Cyrillic А, В, С
    assert plate_key("01 а 123-вс") == latin
    assert plate_key("01\u00a0A\u2011123 BC") == latin  # no-break space, non-breaking hyphen
    assert plate_key("01A123BD") != latin
    assert plate_key("-- --") == ""


def test_document_numbers_ignore_case_separators_and_script() -> None:
    assert keys_for(FieldKind.DOCUMENT, "АА 123-4567") == keys_for(FieldKind.DOCUMENT, "aa1234567")
    assert keys_for(FieldKind.DOCUMENT, "AA1234567") != keys_for(FieldKind.DOCUMENT, "AA1234568")


def test_phones_meet_with_or_without_country_code_and_spacing() -> None:
    assert phone_key("+992 90 000 0000") == "900000000"
    assert phone_key("00992900000000") == "900000000"
    assert phone_key("90-000-00-00") == "900000000"
    assert phone_key("+992900000001") != "900000000"
    assert phone_key("12345") == ""  # too short to mean anyone
    assert keys_for(FieldKind.PHONE, "12345") == frozenset()


def test_companies_meet_without_legal_forms_and_quotes() -> None:
    assert company_keys("ООО «Памир Транс»") == company_keys("Pamir Trans LLC")
    assert company_keys("MChJ Pamir-Trans") == {"pamir", "trans"}
    assert company_keys("ООО") == frozenset()  # one-letter skeleton: nothing to search by
