"""Alert submissions: every validator of the case, nominal and submission models."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from blo_exchange.domain.alerts import (
    ALERT_SUBMISSION_ADAPTER,
    AlertKind,
    FeedbackSubmission,
    NominalBlock,
    RiskSubmission,
    SeizureItem,
    SeizureSubmission,
    parse_alert_submission,
)
from blo_exchange.domain.cases import NOW_CONTEXT_KEY, Narrative, Route, SeizureCase
from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.ids import new_alert_id
from blo_exchange.domain.marking import Tlp

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
ALERT_ID = new_alert_id(NOW - timedelta(hours=1), rng=lambda n: b"\x11" * n)


def seizure(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_SEIZURE)
    data.update(changes)
    return data


def seizure_case(**changes: Any) -> dict[str, Any]:
    case: dict[str, Any] = copy.deepcopy(EXAMPLE_SEIZURE["case"])
    case.update(changes)
    return case


def item(**changes: Any) -> dict[str, Any]:
    base = {"substance": "heroin", "form": "powder", "quantity": "12.5", "unit": "kg"}
    base.update(changes)
    return base


def feedback() -> dict[str, Any]:
    return {
        "kind": "feedback",
        "border_pair": "KG-TJ",
        "crossing_point": "TJ-KARAMYK",
        "tlp": "AMBER",
        "case": {"alert_id": ALERT_ID, "outcome": "seized"},
    }


def parse(data: dict[str, Any]) -> SeizureSubmission | RiskSubmission | FeedbackSubmission:
    return parse_alert_submission(data, now=NOW)


def parse_seizure(data: dict[str, Any]) -> SeizureSubmission:
    submission = parse(data)
    assert isinstance(submission, SeizureSubmission)
    return submission


def _walk(value: object, visit: Callable[[object], None]) -> None:
    visit(value)
    if isinstance(value, dict):
        for child in value.values():
            _walk(child, visit)
    elif isinstance(value, list):
        for child in value:
            _walk(child, visit)


def assert_json_ready_without_floats(document: object) -> None:
    def visit(value: object) -> None:
        assert not isinstance(value, float)
        assert isinstance(value, str | int | list | dict | bool)
        assert type(value) in (str, int, list, dict, bool)  # no enums, no datetimes

    _walk(document, visit)


# --- the examples -----------------------------------------------------------------------------


def test_example_seizure_parses_as_json_and_as_python() -> None:
    from_json = parse_alert_submission(json.dumps(EXAMPLE_SEIZURE), now=NOW)
    from_python = parse(EXAMPLE_SEIZURE)
    assert from_json == from_python
    assert isinstance(from_json, SeizureSubmission)
    assert from_json.kind is AlertKind.SEIZURE
    assert from_json.border_pair == "KG-TJ"
    assert from_json.crossing_point == "KG-KARAMYK"
    assert from_json.tlp is Tlp.AMBER
    (heroin,) = from_json.case.items
    assert (heroin.substance, heroin.quantity, heroin.unit) == ("heroin", "12.5", "kg")
    assert from_json.case.concealment is not None
    assert from_json.case.concealment.method == "fuel_tank"


def test_example_seizure_documents_are_json_ready_without_floats() -> None:
    submission = parse(EXAMPLE_SEIZURE)
    case = submission.case_document()
    nominal = submission.nominal_document()
    assert_json_ready_without_floats(case)
    assert_json_ready_without_floats(nominal)
    assert case["observed_at"] == "2026-11-28T06:40:00.000Z"
    assert case["items"][0]["quantity"] == "12.5"
    assert nominal is not None
    assert nominal["persons"][0]["birth_date"] == "1981-04-12"
    assert json.loads(json.dumps(case)) == case


def test_example_risk_parses() -> None:
    submission = parse(EXAMPLE_RISK)
    assert isinstance(submission, RiskSubmission)
    assert submission.nominal is None
    assert submission.nominal_document() is None
    document = submission.case_document()
    assert_json_ready_without_floats(document)
    assert document["valid_until"] == "2026-12-31T23:59:59.000Z"


def test_examples_round_trip_through_model_dump() -> None:
    for example in (EXAMPLE_SEIZURE, EXAMPLE_RISK):
        submission = parse(example)
        assert parse(submission.model_dump(mode="json", exclude_none=True)) == submission


def test_feedback_submission_parses() -> None:
    submission = parse(feedback())
    assert isinstance(submission, FeedbackSubmission)
    assert submission.case.outcome == "seized"
    assert submission.handling.scheme == "none"
    assert submission.case_document() == {"alert_id": ALERT_ID, "outcome": "seized"}


def test_adapter_dispatches_on_kind() -> None:
    risk = ALERT_SUBMISSION_ADAPTER.validate_python(EXAMPLE_RISK)
    assert isinstance(risk, RiskSubmission)
    with pytest.raises(ValidationError, match=r"union_tag_invalid|does not match any"):
        parse(seizure(kind="lookout"))


# --- submission-level rules -------------------------------------------------------------------


def test_unknown_fields_are_rejected_everywhere() -> None:
    with pytest.raises(ValidationError, match=r"extra_forbidden|Extra inputs"):
        parse(seizure(origin_agency="kg-border-service"))
    with pytest.raises(ValidationError, match="Extra inputs"):
        parse(seizure(origin_node="blo-karamyk-kg"))
    with pytest.raises(ValidationError, match="Extra inputs"):
        parse(seizure(case=seizure_case(weight="12.5")))
    with pytest.raises(ValidationError, match="Extra inputs"):
        parse(seizure(case=seizure_case(items=[item(purity="70%")])))


def test_crossing_point_must_be_on_the_pair() -> None:
    assert parse(seizure(crossing_point="TJ-KARAMYK")).crossing_point == "TJ-KARAMYK"
    with pytest.raises(ValidationError, match="not on border pair 'KG-TJ'"):
        parse(seizure(crossing_point="UZ-OYBEK"))


def test_border_pair_must_be_canonical() -> None:
    with pytest.raises(ValidationError, match="'KG-TJ'"):
        parse(seizure(border_pair="TJ-KG"))


def test_kind_must_match_case() -> None:
    with pytest.raises(ValidationError):
        parse(seizure(kind="risk"))


def test_supersedes_is_an_alert_id() -> None:
    assert parse(seizure(supersedes=ALERT_ID)).supersedes == ALERT_ID
    with pytest.raises(ValidationError):
        parse(seizure(supersedes="not-a-uuid"))


def test_handling_defaults_to_none_and_is_validated() -> None:
    data = seizure()
    del data["handling"]
    assert parse(data).handling.scheme == "none"
    with pytest.raises(ValidationError, match="requires 'conditions'"):
        parse(seizure(handling={"scheme": "europol", "code": "H3"}))


def test_grading_is_validated() -> None:
    with pytest.raises(ValidationError, match="admiralty source"):
        parse(seizure(grading={"scheme": "admiralty", "source": "X", "information": "1"}))


def test_tlp_is_validated() -> None:
    assert parse(seizure(tlp="AMBER+STRICT")).tlp is Tlp.AMBER_STRICT
    with pytest.raises(ValidationError):
        parse(seizure(tlp="amber"))


# --- seizure case -----------------------------------------------------------------------------


@pytest.mark.parametrize("quantity", ["12.5", "1", "0.000001", "999999999.999999", "0012"])
def test_valid_quantities(quantity: str) -> None:
    assert SeizureItem.model_validate(item(quantity=quantity)).quantity == quantity


@pytest.mark.parametrize(
    "quantity",
    ["0", "0.0", "-1", "1e3", "12,5", "12.", ".5", "1.1234567", "1234567890", "١٢", " 12"],
)
def test_invalid_quantity_strings(quantity: str) -> None:
    with pytest.raises(ValidationError):
        SeizureItem.model_validate(item(quantity=quantity))


@pytest.mark.parametrize("number", ["12.5", "12"])
def test_quantity_as_json_number_is_rejected(number: str) -> None:
    body = json.dumps(item()).replace('"12.5"', number)
    with pytest.raises(ValidationError, match="string"):
        SeizureItem.model_validate_json(body)


def test_quantity_as_python_float_is_rejected() -> None:
    with pytest.raises(ValidationError):
        SeizureItem.model_validate(item(quantity=12.5))


def test_cas_number_is_required_for_precursors_only() -> None:
    acetic_anhydride = item(substance="precursor", form="liquid", unit="l", cas_number="108-24-7")
    assert SeizureItem.model_validate(acetic_anhydride).cas_number == "108-24-7"
    with pytest.raises(ValidationError, match="needs its cas_number"):
        SeizureItem.model_validate(item(substance="precursor"))
    with pytest.raises(ValidationError, match="only for substance 'precursor'"):
        SeizureItem.model_validate(item(cas_number="108-24-7"))


@pytest.mark.parametrize("cas", ["108-24-7", "7732-18-5", "64-19-7", "1120-71-4"])
def test_valid_cas_numbers(cas: str) -> None:
    assert SeizureItem.model_validate(item(substance="precursor", cas_number=cas)).cas_number


@pytest.mark.parametrize(
    ("cas", "message"),
    [
        ("108-24-8", "check digit"),
        ("7732-18-4", "check digit"),
        ("108247", "pattern"),
        ("1-24-7", "pattern"),
        ("12345678-24-7", "pattern"),
    ],
)
def test_invalid_cas_numbers(cas: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SeizureItem.model_validate(item(substance="precursor", cas_number=cas))


def test_package_count_is_a_non_negative_int() -> None:
    assert SeizureItem.model_validate(item(package_count=0)).package_count == 0
    for bad in (-1, 2.0, "3", True):
        with pytest.raises(ValidationError):
            SeizureItem.model_validate(item(package_count=bad))


def test_items_between_one_and_fifty() -> None:
    with pytest.raises(ValidationError, match="at least 1"):
        parse(seizure(case=seizure_case(items=[])))
    assert len(parse_seizure(seizure(case=seizure_case(items=[item()] * 50))).case.items) == 50
    with pytest.raises(ValidationError, match="at most 50"):
        parse(seizure(case=seizure_case(items=[item()] * 51)))


def test_vocabulary_values_are_checked() -> None:
    with pytest.raises(ValidationError):
        SeizureItem.model_validate(item(substance="tea"))
    with pytest.raises(ValidationError):
        parse(seizure(case=seizure_case(detection_method="luck")))


def test_observed_at_may_be_up_to_five_minutes_ahead() -> None:
    ok = seizure(case=seizure_case(observed_at="2026-11-28T07:05:00Z"))
    assert parse_seizure(ok).case.observed_at == NOW + timedelta(minutes=5)
    too_late = seizure(case=seizure_case(observed_at="2026-11-28T07:05:00.001Z"))
    with pytest.raises(ValidationError, match="in the future"):
        parse(too_late)


def test_observed_at_uses_the_clock_without_context() -> None:
    far = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    with pytest.raises(ValidationError, match="in the future"):
        SeizureCase.model_validate(seizure_case(observed_at=far))
    earlier = {NOW_CONTEXT_KEY: datetime(2026, 11, 1, tzinfo=UTC)}
    with pytest.raises(ValidationError, match="in the future"):
        SeizureCase.model_validate(seizure_case(), context=earlier)


def test_observed_at_must_have_an_offset() -> None:
    with pytest.raises(ValidationError, match="offset"):
        parse(seizure(case=seizure_case(observed_at="2026-11-28T06:40:00")))


def test_route_and_conveyance_countries_are_checked() -> None:
    assert Route.model_validate({"transit": ["TJ", "KG"]}).transit == ["TJ", "KG"]
    with pytest.raises(ValidationError):
        Route.model_validate({"origin": "Afghanistan"})
    with pytest.raises(ValidationError, match="at most 10"):
        Route.model_validate({"transit": ["TJ"] * 11})
    conveyance = {"mode": "road", "registration_country": "tj"}
    with pytest.raises(ValidationError):
        parse(seizure(case=seizure_case(conveyance=conveyance)))


@pytest.mark.parametrize("lang", ["ru", "tg", "ky", "uz-Cyrl", "en-GB", "zh-Hant-TW", "fil"])
def test_valid_narrative_languages(lang: str) -> None:
    assert Narrative(text="x", lang=lang).lang == lang


@pytest.mark.parametrize("lang", ["r", "russian", "ru_RU", "ru-", "", "en-GB-x-verylongsubtag"])
def test_invalid_narrative_languages(lang: str) -> None:
    with pytest.raises(ValidationError):
        Narrative(text="x", lang=lang)


def test_narrative_text_length() -> None:
    with pytest.raises(ValidationError):
        Narrative(text="", lang="ru")
    with pytest.raises(ValidationError):
        Narrative(text="x" * 5001, lang="ru")


# --- risk case --------------------------------------------------------------------------------


def risk_case(**changes: Any) -> dict[str, Any]:
    case: dict[str, Any] = copy.deepcopy(EXAMPLE_RISK["case"])
    case.update(changes)
    return case


def risk(**case_changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(EXAMPLE_RISK)
    data["case"] = risk_case(**case_changes)
    return data


@pytest.mark.parametrize(
    "changes",
    [
        {"subject": ""},
        {"indicators": []},
        {"indicators": ["x"] * 21},
        {"indicators": ["x" * 201]},
        {"targets": [{"type": "ship", "value": "x"}]},
        {"targets": [{"type": "plate", "value": ""}]},
        {"targets": [{"type": "plate", "value": "x"}] * 51},
        {"valid_until": "2026-12-31T23:59:59"},
        {"modus_operandi": "x" * 2001},
        {"recommended_action": "x" * 1001},
    ],
)
def test_invalid_risk_cases(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(risk(**changes))


def test_minimal_risk_case() -> None:
    data = risk()
    data["case"] = {"subject": "Cannabis in melon trucks", "indicators": ["melons in November"]}
    submission = parse(data)
    assert submission.case_document() == {**data["case"], "targets": []}


# --- feedback case ----------------------------------------------------------------------------


def test_feedback_needs_an_alert_id_and_a_known_outcome() -> None:
    data = feedback()
    data["case"]["alert_id"] = ALERT_ID.upper()
    with pytest.raises(ValidationError):
        parse(data)
    data = feedback()
    data["case"]["outcome"] = "arrested"
    with pytest.raises(ValidationError):
        parse(data)


# --- nominal block ----------------------------------------------------------------------------


def test_empty_nominal_block_is_rejected() -> None:
    with pytest.raises(ValidationError, match="at least one person, company or phone"):
        parse(seizure(nominal={}))
    with pytest.raises(ValidationError, match="at least one"):
        NominalBlock(persons=[], companies=[], phones=[])


def test_nominal_block_with_only_a_phone() -> None:
    assert NominalBlock.model_validate({"phones": ["+996700000001"]}).phones == ["+996700000001"]


@pytest.mark.parametrize("phone", ["996700000001", "+0700000001", "+99670", "+996 700 000 001"])
def test_invalid_phones(phone: str) -> None:
    with pytest.raises(ValidationError):
        NominalBlock.model_validate({"phones": [phone]})


@pytest.mark.parametrize(
    "person",
    [
        {"role": "smuggler", "name": "A"},
        {"role": "driver", "name": ""},
        {"role": "driver", "name": "A", "birth_date": 0},
        {"role": "driver", "name": "A", "birth_date": "12.04.1981"},
        {"role": "driver", "name": "A", "nationality": "Tajik"},
        {"role": "driver", "name": "A", "document": {"type": "visa", "number": "1"}},
        {"role": "driver", "name": "A", "document": {"type": "passport", "number": "x" * 65}},
        {"role": "driver", "name": "A", "phone": "+992900000001"},
    ],
)
def test_invalid_persons(person: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        NominalBlock.model_validate({"persons": [person]})


def test_invalid_company() -> None:
    with pytest.raises(ValidationError):
        NominalBlock.model_validate({"companies": [{"name": "X", "country": "XX"}]})
    with pytest.raises(ValidationError):
        NominalBlock.model_validate({"companies": [{"name": "X", "registration": "1" * 65}]})


def test_models_are_frozen() -> None:
    submission = parse(EXAMPLE_SEIZURE)
    with pytest.raises(ValidationError, match="frozen"):
        submission.tlp = Tlp.RED  # type: ignore[misc]


def test_times_outside_a_sane_window_are_refused() -> None:
    with pytest.raises(ValidationError, match="days ago"):
        parse(seizure(case=seizure_case(observed_at="0001-01-01T00:00:00Z")))
    assert parse_seizure(seizure(case=seizure_case(observed_at="2022-01-01T00:00:00Z")))
    with pytest.raises(ValidationError, match="within"):
        parse(risk(valid_until="9999-12-31T23:59:59Z"))
    with pytest.raises(ValidationError, match="within"):
        parse(risk(valid_until="1970-01-01T00:00:00Z"))


@pytest.mark.parametrize("bad", ["\u202e", "\x00", "\x1b[31m", "\x7f", "\x85", "\u2066"])
def test_control_and_bidi_override_characters_are_refused(bad: str) -> None:
    narrative = {"text": f"driver said{bad} nothing", "lang": "ru"}
    with pytest.raises(ValidationError, match="control or bidi"):
        parse(seizure(case=seizure_case(narrative=narrative)))
    with pytest.raises(ValidationError, match="control or bidi"):
        parse(risk(indicators=[f"plate{bad}"]))


def test_line_breaks_and_right_to_left_marks_are_kept() -> None:
    text = "line one\r\nline two\tend \u200f"
    narrative = {"text": text, "lang": "ru"}
    parsed = parse_seizure(seizure(case=seizure_case(narrative=narrative)))
    assert parsed.case.narrative is not None
    assert parsed.case.narrative.text == text
