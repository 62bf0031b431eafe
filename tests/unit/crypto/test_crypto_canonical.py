"""RFC 8785 canonical JSON, strict base64url and strict parsing."""

from __future__ import annotations

import base64
import math
import re
from typing import Any, cast

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from blo_exchange.crypto.canonical import (
    b64u_decode,
    b64u_encode,
    b64u_length,
    canonical_json,
    canonical_object,
    parse_canonical_json,
    sha256_hex,
)

# RFC 8785 section 3.2.2 example, without its "numbers" member (floats are refused here).
RFC8785_STRINGS_IN = {
    "string": "\u20ac$\u000f\u000aA'\u0042\u0022\u005c\\\"/",
    "literals": [None, True, False],
}
RFC8785_STRINGS_OUT = (
    b'{"literals":[null,true,false],"string":"\xe2\x82\xac$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
)

# RFC 8785 section 3.2.3 example: keys sorted by their UTF-16 code units.
RFC8785_SORTING_IN = {
    "\u20ac": "Euro Sign",
    "\r": "Carriage Return",
    "\ufb33": "Hebrew Letter Dalet With Dagesh",
    "1": "One",
    "\U0001f600": "Emoji: Grinning Face",
    "\u0080": "Control",
    "\u00f6": "Latin Small Letter O With Diaeresis",
}
RFC8785_SORTING_ORDER = ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]


def test_rfc8785_string_escaping_example() -> None:
    assert canonical_json(RFC8785_STRINGS_IN) == RFC8785_STRINGS_OUT


def test_rfc8785_key_sorting_example_is_utf16_order() -> None:
    expected = (
        "{"
        + ",".join(
            f'"{key}":"{RFC8785_SORTING_IN[key]}"'.replace("\r", "\\r")
            for key in RFC8785_SORTING_ORDER
        )
        + "}"
    ).encode("utf-8")
    assert canonical_json(RFC8785_SORTING_IN) == expected
    # U+1F600 sorts before U+FB33 only because UTF-16 compares its surrogate 0xD83D.
    assert sorted(RFC8785_SORTING_IN) != RFC8785_SORTING_ORDER


def test_integers_and_nesting() -> None:
    value = {"b": [1, -2, 0, 2**53 - 1], "a": {"z": None, "y": "x"}}
    assert canonical_json(value) == b'{"a":{"y":"x","z":null},"b":[1,-2,0,9007199254740991]}'


def test_integer_outside_ijson_range_is_refused() -> None:
    with pytest.raises(ValueError, match="canonicalisable"):
        canonical_json({"n": 2**53})


@pytest.mark.parametrize(
    "value",
    [
        1.0,
        4.5,
        1e30,
        math.nan,
        math.inf,
        {"a": 0.5},
        [1, [2, {"deep": -0.0}]],
        {"a": {"b": {"c": [1.25]}}},
    ],
)
def test_floats_are_refused_anywhere(value: object) -> None:
    with pytest.raises(ValueError, match="float"):
        canonical_json(value)


@pytest.mark.parametrize("value", [b"bytes", {1: "non-string key"}, {"a": {1, 2}}, object()])
def test_non_json_types_are_refused(value: object) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the contract
        canonical_json(value)


def test_tuples_and_mappings_serialise_like_lists_and_dicts() -> None:
    from types import MappingProxyType

    assert canonical_json(MappingProxyType({"a": (1, 2)})) == b'{"a":[1,2]}'


def test_parse_canonical_round_trip() -> None:
    raw = canonical_json({"b": [True, None], "a": "\u20ac"})
    assert parse_canonical_json(raw) == {"a": "\u20ac", "b": [True, None]}


@pytest.mark.parametrize(
    "raw",
    [
        b'{"a":1,"a":2}',  # duplicate key
        b'{"a":1.5}',  # float
        b'{"a":1e3}',  # float spelled as exponent
        b'{"a":NaN}',
        b'{"a":Infinity}',
        b'{"a": 1}',  # not canonical: whitespace
        b'{"b":1,"a":2}',  # not canonical: order
        b'{"a":"\\u0041"}',  # not canonical: needless escape
        b'{"a":-0}',  # not canonical: negative zero
        b'{"a":"\xff"}',  # not UTF-8
        b"\xef\xbb\xbf{}",  # BOM
        b"",
        b"[" * 100_000,  # too deep
    ],
)
def test_parse_canonical_rejects(raw: bytes) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - any ValueError is the contract
        parse_canonical_json(raw)


@pytest.mark.parametrize("size", range(10))
def test_b64u_round_trip(size: int) -> None:
    data = bytes(range(250, 250 - size, -1))
    text = b64u_encode(data)
    assert "=" not in text
    assert b64u_decode(text) == data


def test_b64u_uses_url_alphabet() -> None:
    assert b64u_encode(b"\xfb\xff") == "-_8"


@pytest.mark.parametrize(
    "text",
    [
        "QQ==",  # padding
        "QQ=",
        "+/8",  # standard alphabet
        "QR",  # non-zero trailing bits (canonical is "QQ")
        "AAAAB",  # length 1 mod 4
        "QQ\n",  # whitespace
        " QQ",
        "Q Q",
        "QQ\u00e9",  # non-ASCII
    ],
)
def test_b64u_decode_is_strict(text: str) -> None:
    with pytest.raises(ValueError, match="base64url"):
        b64u_decode(text)


@given(st.text(alphabet="AQgw_-9+/= \n\u00e9", max_size=14))
def test_b64u_form_is_checked_without_decoding_exactly_as_decoding_does(text: str) -> None:
    """``b64u_length`` (the check before any bytes are needed) accepts exactly the spellings
    that decode and encode back to themselves in the URL-safe alphabet, with their length."""
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        canonical = re.fullmatch("[A-Za-z0-9_-]*", text) is not None and b64u_encode(data) == text
    except ValueError:  # binascii.Error is one; so is a non-ASCII text
        canonical = False
    if canonical:
        assert b64u_length(text) == len(data)
        assert b64u_decode(text) == data
    else:
        with pytest.raises(ValueError, match="base64url"):
            b64u_length(text)
        with pytest.raises(ValueError, match="base64url"):
            b64u_decode(text)


def test_sha256_hex() -> None:
    assert sha256_hex(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )


_JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(st.characters(exclude_categories=["Cs"])), children, max_size=4)
    ),
    max_leaves=20,
)


@given(_JSON_VALUES)
def test_the_fast_path_writes_exactly_what_rfc8785_writes(value: object) -> None:
    assert canonical_json(value) == rfc8785.dumps(cast(Any, value))


def test_keys_beyond_the_bmp_sort_by_utf16_code_units() -> None:
    value = {"\U0001f600": 1, "\uff61": 2, "a": 3}
    assert canonical_json(value) == rfc8785.dumps(value)
    assert canonical_json(value).index("😀".encode()) < canonical_json(value).index("｡".encode())


@given(
    st.dictionaries(
        st.text(st.characters(max_codepoint=127, exclude_categories=["Cs"])), _JSON_VALUES
    )
)
def test_an_object_of_canonical_members_is_the_objects_canonical_bytes(
    members: dict[str, object],
) -> None:
    # Keys with control characters and quotes too: they are escaped as the whole would be.
    given_bytes = {key: canonical_json(value) for key, value in members.items()}
    assert canonical_object(given_bytes) == rfc8785.dumps(cast(Any, members))


@pytest.mark.parametrize("key", ["\u00e9t\u00e9", "\U0001f600", "\uff61"])
def test_an_object_of_canonical_members_refuses_keys_beyond_ascii(key: str) -> None:
    # Beyond ASCII the code-point order the composition uses can differ from JCS's UTF-16 one.
    with pytest.raises(ValueError, match="ASCII"):
        canonical_object({key: b"1", "a": b"2"})
