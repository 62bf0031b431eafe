"""TLP, handling codes, grading schemes and the controlled vocabularies."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from blo_exchange.domain.marking import (
    GRADING_LABELS,
    HANDLING_LABELS,
    TLP_LABELS,
    Grading,
    Handling,
    Tlp,
    restricts_resharing,
    tlp_rank,
)
from blo_exchange.domain.vocab import (
    ConcealmentMethod,
    ConveyanceMode,
    DetectionMethod,
    Form,
    Outcome,
    PersonRole,
    Substance,
    Unit,
    Vocabulary,
    labels,
)


def test_tlp_values_and_ranks() -> None:
    assert [t.value for t in Tlp] == ["CLEAR", "GREEN", "AMBER", "AMBER+STRICT", "RED"]
    assert [tlp_rank(t) for t in Tlp] == [0, 1, 2, 3, 4]
    assert tlp_rank("AMBER+STRICT") == 3
    assert set(TLP_LABELS) == set(Tlp)


@pytest.mark.parametrize(
    "data",
    [
        {"scheme": "none"},
        {"scheme": "europol", "code": "H0"},
        {"scheme": "europol", "code": "H2"},
        {"scheme": "europol", "code": "H3", "conditions": "Not to be shared with customs."},
        {"scheme": "uk-3x5x2", "code": "P"},
        {"scheme": "uk-3x5x2", "code": "C", "conditions": "Analysts of the receiving BLO only."},
    ],
)
def test_valid_handling(data: dict[str, Any]) -> None:
    assert Handling.model_validate(data).scheme == data["scheme"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"scheme": "europol", "code": "H3"}, "requires 'conditions'"),
        ({"scheme": "europol", "code": "H3", "conditions": "   "}, "requires 'conditions'"),
        ({"scheme": "uk-3x5x2", "code": "C"}, "requires 'conditions'"),
        ({"scheme": "europol", "code": "H4"}, "H0, H1, H2, H3"),
        ({"scheme": "europol"}, "must be one of"),
        ({"scheme": "uk-3x5x2", "code": "H1"}, "P, C"),
        ({"scheme": "none", "code": "H0"}, "neither"),
        ({"scheme": "none", "conditions": "x"}, "neither"),
        ({"scheme": "tlp"}, "scheme"),
        ({"scheme": "europol", "code": "H3", "conditions": "x" * 1001}, "at most 1000"),
        ({"scheme": "none", "extra": 1}, "Extra inputs"),
    ],
)
def test_invalid_handling(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Handling.model_validate(data)


def test_restricts_resharing_for_red_and_h2_only() -> None:
    h2 = Handling(scheme="europol", code="H2")
    h1 = Handling(scheme="europol", code="H1")
    none = Handling(scheme="none")
    assert restricts_resharing(h2, Tlp.GREEN)
    assert restricts_resharing(none, Tlp.RED)
    assert not restricts_resharing(h1, Tlp.AMBER_STRICT)
    assert not restricts_resharing(none, Tlp.CLEAR)


@pytest.mark.parametrize(
    ("scheme", "source", "information"),
    [
        ("admiralty", "A", "1"),
        ("admiralty", "F", "6"),
        ("europol", "X", "4"),
        ("europol", "B", "2"),
        ("uk-3x5x2", "1", "A"),
        ("uk-3x5x2", "3", "E"),
    ],
)
def test_valid_grading(scheme: str, source: str, information: str) -> None:
    grading = Grading.model_validate(
        {"scheme": scheme, "source": source, "information": information}
    )
    assert GRADING_LABELS[grading.scheme]["source"][grading.source]


@pytest.mark.parametrize(
    ("scheme", "source", "information", "message"),
    [
        ("admiralty", "G", "1", "admiralty source"),
        ("admiralty", "A", "7", "admiralty information"),
        ("admiralty", "a", "1", "admiralty source"),
        ("europol", "D", "1", "europol source"),
        ("europol", "A", "5", "europol information"),
        ("uk-3x5x2", "A", "1", "uk-3x5x2 source"),
        ("uk-3x5x2", "4", "A", "uk-3x5x2 source"),
        ("uk-3x5x2", "1", "F", "uk-3x5x2 information"),
        ("nato", "A", "1", "scheme"),
    ],
)
def test_invalid_grading(scheme: str, source: str, information: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Grading.model_validate({"scheme": scheme, "source": source, "information": information})


def test_grading_codes_are_strings_not_numbers() -> None:
    with pytest.raises(ValidationError):
        Grading.model_validate_json('{"scheme": "uk-3x5x2", "source": 1, "information": "A"}')


def test_label_tables_cover_every_scheme() -> None:
    assert set(HANDLING_LABELS) == {"europol", "uk-3x5x2", "none"}
    assert list(HANDLING_LABELS["europol"]) == ["H0", "H1", "H2", "H3"]
    assert list(HANDLING_LABELS["uk-3x5x2"]) == ["P", "C"]
    assert set(GRADING_LABELS) == {"admiralty", "europol", "uk-3x5x2"}
    assert GRADING_LABELS["uk-3x5x2"]["source"] == {
        "1": "Reliable",
        "2": "Untested",
        "3": "Not reliable",
    }


VOCABULARIES: list[type[Vocabulary]] = [
    Substance,
    Form,
    Unit,
    ConcealmentMethod,
    DetectionMethod,
    ConveyanceMode,
    Outcome,
    PersonRole,
]


@pytest.mark.parametrize("vocabulary", VOCABULARIES)
def test_every_vocabulary_member_has_a_label(vocabulary: type[Vocabulary]) -> None:
    table = labels(vocabulary)
    assert list(table) == [member.value for member in vocabulary]
    assert all(label and label == label.strip() for label in table.values())


def test_labels_are_per_vocabulary_even_for_equal_values() -> None:
    assert Substance.OTHER.value == Form.OTHER.value  # StrEnums compare by value...
    assert Substance.OTHER.label != Form.OTHER.label  # ...but their labels are their own


def test_vocabulary_values() -> None:
    assert [s.value for s in Substance] == [
        "heroin",
        "opium",
        "hashish",
        "cannabis",
        "methamphetamine",
        "cocaine",
        "nps",
        "precursor",
        "other",
    ]
    assert [u.value for u in Unit] == ["g", "kg", "ml", "l", "tablet", "unit"]
    assert [m.value for m in ConveyanceMode] == ["road", "rail", "pedestrian", "air", "post"]
    assert [o.value for o in Outcome] == [
        "seized",
        "nothing_found",
        "false_positive",
        "information_only",
    ]
