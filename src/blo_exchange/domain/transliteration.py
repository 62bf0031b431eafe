"""Match keys: names, plates, documents, phones and companies folded so that spellings of the
same thing across Cyrillic and Latin compare equal.

A key is never shown and never leaves the node; it is what the search index stores and what a
query is reduced to (``services.search``). Both sides go through the same function, so a rule
only has to make two spellings *meet*, not produce a correct transliteration.

Names (persons, companies) become a folded Latin skeleton, one key per word:

1. NFKC, lower case; Cyrillic letters to Latin by the ICAO Doc 9303 (Part 3, 6.B) table, with
   the Tajik, Kyrgyz and Uzbek letters (ғ ӣ қ ӯ ҳ ҷ ө ү ң ў) added; ``ь`` and ``ъ`` dropped;
2. Uzbek Latin ``oʻ``/``o'`` (ў) to ``u`` and ``gʻ`` (ғ) to ``g``, whatever apostrophe is used;
   other marks and diacritics dropped (``ş`` and ``ç`` first become ``sh`` and ``ch``);
3. the spellings that vary between systems collapse: ``shch`` → ``sh``, ``dzh``/``dj``/``zh`` →
   ``j``, ``kh``/``x`` → ``h``, ``gh`` → ``g``, ``yo`` → ``e`` (ё: Bakhtiyor/BAKHTIER), ``q`` →
   ``k``, ``w`` → ``v``; a ``y`` before ``e`` at the start of a word or after a vowel goes
   (Yevgeniy/Evgenii, Aliyev/Aliev); every other ``y`` becomes ``i`` (ya/ia, yu/iu, iy/ii); runs
   of one letter become one.

So Рахимов, RAKHIMOV, Rahimov, Raximov and Раҳимов are all ``rahimov``. The skeleton is lossy on
purpose: Alex and Aleh meet too. A match is a hint for a person to look at, never a decision.

Plates and document numbers: NFKC, upper case, the Cyrillic letters that look like Latin ones
(А В Е К М Н О Р С Т У Х) become those, other Cyrillic letters are transliterated, and everything
but A-Z and 0-9 (spaces, dashes, dots) goes: ``01 А 123-ВС`` is ``01A123BC``.

Phones: the digits only, and of those the last nine (the national number in KG, TJ and UZ), so
``+992 90 000 0000``, ``00992900000000`` and ``900000000`` meet. Fewer than seven digits is no key.

Not here: where keys are stored or who may search them (``services.search``).
"""

# Cyrillic and Latin look-alikes are this module's subject, not a mistake:
# ruff: noqa: RUF001, RUF002, RUF003
from __future__ import annotations

import re
import unicodedata
from enum import StrEnum
from typing import Final

__all__ = [
    "FieldKind",
    "company_keys",
    "document_key",
    "keys_for",
    "name_keys",
    "phone_key",
    "plate_key",
    "skeleton",
]


class FieldKind(StrEnum):
    """What a key was made from; a query searches one kind."""

    PERSON = "person"
    DOCUMENT = "document"
    PLATE = "plate"
    PHONE = "phone"
    COMPANY = "company"


# ICAO Doc 9303 Part 3, section 6 (B): Cyrillic, lower case. Letters ICAO lists for other
# languages are included as it gives them; the Central Asian ones it leaves out follow the
# national Latin alphabets (ғ g', қ q, ҳ h, ҷ j, ў o', ө ö, ү ü, ң ng), folded in step 3 anyway.
_CYRILLIC: Final[dict[str, str]] = {
    "а": "a", "б": "b", "в": "v", "г": "g", "д": "d", "е": "e", "ё": "e", "ж": "zh",
    "з": "z", "и": "i", "й": "i", "к": "k", "л": "l", "м": "m", "н": "n", "о": "o",
    "п": "p", "р": "r", "с": "s", "т": "t", "у": "u", "ф": "f", "х": "kh", "ц": "ts",
    "ч": "ch", "ш": "sh", "щ": "shch", "ъ": "", "ы": "y", "ь": "", "э": "e", "ю": "iu",
    "я": "ia", "ғ": "gh", "ӣ": "i", "қ": "q", "ӯ": "u", "ҳ": "h", "ҷ": "j", "ө": "o",
    "ү": "u", "ң": "n", "ў": "u", "і": "i", "ї": "i", "є": "ie", "ґ": "g", "ә": "a",
    "һ": "h", "җ": "j", "ҫ": "s", "ӑ": "a", "ӗ": "e", "ӳ": "u",
}  # fmt: skip

# Cyrillic capitals that look like Latin ones, as they turn up in plates and document numbers.
_LOOKALIKES: Final[dict[str, str]] = {
    "А": "A", "В": "B", "Е": "E", "К": "K", "М": "M", "Н": "H", "О": "O", "Р": "P",
    "С": "C", "Т": "T", "У": "Y", "Х": "X", "І": "I", "Ј": "J", "Ѕ": "S", "Ү": "Y",
}  # fmt: skip

_APOSTROPHES: Final = "'ʻʼ‘’`´ʹ"
_UZBEK_DIGRAPHS: Final = re.compile(f"([og])[{_APOSTROPHES}]")
_BEFORE_STRIP: Final = {"ş": "sh", "ç": "ch", "ğ": "g", "ı": "i", "ñ": "n", "ß": "ss"}
_COLLAPSE: Final = (
    ("shch", "sh"),
    ("dzh", "j"),
    ("dj", "j"),
    ("zh", "j"),
    ("kh", "h"),
    ("x", "h"),
    ("gh", "g"),
    ("yo", "e"),  # ё: ICAO writes E, Uzbek Latin and many passports YO
    ("q", "k"),
    ("w", "v"),
)
_Y_BEFORE_E: Final = re.compile(r"(?:^|(?<=[aeiouy]))y(?=e)")
_RUNS: Final = re.compile(r"(.)\1+")
_WORD: Final = re.compile(r"[a-z]+")
_MIN_WORD = 2
_PHONE_DIGITS = 9
_MIN_PHONE_DIGITS = 7


def _to_latin(text: str) -> str:
    """Steps 1 and 2: lower-case Latin letters, digits and separators."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(_CYRILLIC.get(ch, ch) for ch in text)
    text = _UZBEK_DIGRAPHS.sub(lambda m: "u" if m.group(1) == "o" else "g", text)
    text = "".join(_BEFORE_STRIP.get(ch, ch) for ch in text)
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def skeleton(word: str) -> str:
    """Step 3 for one word already in Latin letters (see the module docstring)."""
    for variant, folded in _COLLAPSE:
        word = word.replace(variant, folded)
    word = _Y_BEFORE_E.sub("", word).replace("y", "i")
    return _RUNS.sub(r"\1", word)


_COMPANY_FORMS: Final = frozenset(
    # Legal forms: LLC, Ltd, JSC, OOO/ООО, ОсОО (KG), МЧЖ/MChJ (UZ), ҶДММ (TJ)... as skeletons.
    skeleton(form)
    for form in (
        "llc", "ltd", "jsc", "ojsc", "cjsc", "inc", "co", "corp", "gmbh", "ooo", "oao", "zao",
        "pao", "ao", "osoo", "mchj", "jchk", "jdmm", "jsk", "chk", "ip", "fe", "sp", "xk",
        "hk", "ak", "ajs", "company", "limited",
    )
)  # fmt: skip


def name_keys(text: str) -> frozenset[str]:
    """One key per word of a person's name; words of one letter (initials) give none."""
    words = (skeleton(w) for w in _WORD.findall(_to_latin(text)))
    return frozenset(w for w in words if len(w) >= _MIN_WORD)


def company_keys(text: str) -> frozenset[str]:
    """A company name's words as :func:`name_keys`, without legal forms (LLC, ООО, MChJ...)."""
    keys = name_keys(text)
    return keys - _COMPANY_FORMS or keys


def plate_key(text: str) -> str:
    """``01 А 123-ВС`` (Cyrillic А, В, С) → ``01A123BC``; empty when nothing is left."""
    text = unicodedata.normalize("NFKC", text).upper()
    text = "".join(_LOOKALIKES.get(ch, ch) for ch in text)
    text = "".join(_CYRILLIC.get(ch, ch) for ch in text.lower()).upper()
    decomposed = unicodedata.normalize("NFD", text)
    return "".join(ch for ch in decomposed if ch.isascii() and ch.isalnum())


def document_key(text: str) -> str:
    """A passport or registration number: as :func:`plate_key` (look-alikes, no separators)."""
    return plate_key(text)


def phone_key(text: str) -> str:
    """The last nine digits of a phone number; empty when it has fewer than seven digits."""
    text = unicodedata.normalize("NFKC", text)
    digits = "".join(ch for ch in text if ch.isascii() and ch.isdigit())
    if len(digits) < _MIN_PHONE_DIGITS:
        return ""
    return digits[-_PHONE_DIGITS:]


def keys_for(kind: FieldKind, text: str) -> frozenset[str]:
    """The keys ``text`` gives as a value of ``kind`` (what both the index and a query use)."""
    if kind is FieldKind.PERSON:
        return name_keys(text)
    if kind is FieldKind.COMPANY:
        return company_keys(text)
    single = (
        phone_key(text)
        if kind is FieldKind.PHONE
        else plate_key(text)
        if kind is FieldKind.PLATE
        else document_key(text)
    )
    return frozenset({single} if single else ())
