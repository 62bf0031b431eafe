"""The officer's form to a submission document, and pydantic's errors back to the form's fields."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from blo_exchange.domain.alerts import parse_alert_submission
from blo_exchange.web.forms import (
    field_anchor,
    field_errors,
    field_label,
    open_sections,
    submission_from_form,
)
from blo_exchange.web.messages import catalogue

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)

SEIZURE_FORM = {
    "kind": "seizure",
    "tz_offset": "-360",
    "border_pair": "KG-TJ",
    "crossing_point": "KG-KARAMYK",
    "tlp": "AMBER",
    "handling.scheme": "europol",
    "handling.code": "H1",
    "handling.conditions": "",
    "grading.scheme": "",
    "grading.source": "B",
    "seizure.case.observed_at": "2026-11-28T12:40",
    "seizure.case.items.0.substance": "heroin",
    "seizure.case.items.0.form": "powder",
    "seizure.case.items.0.quantity": " 12.5 ",
    "seizure.case.items.0.unit": "kg",
    "seizure.case.items.0.package_count": "25",
    "seizure.case.items.0.cas_number": "",
    "seizure.case.detection_method": "canine",
    "seizure.case.conveyance.mode": "",
    "seizure.case.conveyance.registration_country": "",
    "seizure.case.route.origin": "af",
    "seizure.case.narrative.text": "",
    "seizure.case.narrative.lang": "ru",
    "risk.case.subject": "belongs to the other kind",
    "nominal.persons.0.role": "",
    "nominal.persons.0.name": "",
}


def test_a_filled_seizure_form_is_a_valid_submission() -> None:
    document = submission_from_form(SEIZURE_FORM)
    assert document == {
        "kind": "seizure",
        "border_pair": "KG-TJ",
        "crossing_point": "KG-KARAMYK",
        "tlp": "AMBER",
        "handling": {"scheme": "europol", "code": "H1"},
        "case": {
            "observed_at": "2026-11-28T12:40:00+06:00",
            "items": [
                {
                    "substance": "heroin",
                    "form": "powder",
                    "quantity": "12.5",
                    "unit": "kg",
                    "package_count": 25,
                }
            ],
            "detection_method": "canine",
            "route": {"origin": "AF"},
        },
    }
    submission = parse_alert_submission(document, now=NOW)
    assert submission.case_document()["observed_at"].startswith("2026-11-28T06:40:00")


def test_risk_form_splits_indicators_and_keeps_nominal() -> None:
    form = {
        "kind": "risk",
        "border_pair": "KG-TJ",
        "crossing_point": "KG-KARAMYK",
        "tlp": "GREEN",
        "handling.scheme": "none",
        "handling.code": "H1",
        "grading.scheme": "admiralty",
        "grading.source": "B",
        "grading.information": "2",
        "risk.case.subject": "Trucks with doubled fuel tanks",
        "risk.case.indicators": "fuel use too high\r\n\r\n fresh welds \n",
        "risk.case.targets.0.type": "plate",
        "risk.case.targets.0.value": "0417TJ02",
        "seizure.case.items.0.quantity": "ignored",
        "nominal.persons.0.role": "driver",
        "nominal.persons.0.name": "Example Driver",
    }
    document = submission_from_form(form)
    assert document["handling"] == {"scheme": "none"}
    assert document["case"]["indicators"] == ["fuel use too high", "fresh welds"]
    assert document["nominal"] == {"persons": [{"role": "driver", "name": "Example Driver"}]}
    parse_alert_submission(document, now=NOW)


@pytest.mark.parametrize(
    ("changes", "field", "en_message"),
    [
        ({"seizure.case.items.0.quantity": "12,5,0"}, "seizure.case.items.0.quantity", "12,5"),
        ({"seizure.case.items.0.quantity": "0"}, "seizure.case.items.0.quantity", "greater"),
        ({"seizure.case.items.0.unit": ""}, "seizure.case.items.0.unit", "required"),
        (
            {"seizure.case.items.0.package_count": "many"},
            "seizure.case.items.0.package_count",
            "whole number",
        ),
        ({"seizure.case.items.0.substance": "precursor"}, "seizure.case.items.0", "cas_number"),
        ({"handling.code": "H3"}, "handling", "conditions"),
        ({"tlp": "PURPLE"}, "tlp", "Choose one"),
        ({"seizure.case.observed_at": "yesterday"}, "seizure.case.observed_at", ""),
    ],
)
def test_errors_land_on_the_field_they_concern(
    changes: dict[str, str], field: str, en_message: str
) -> None:
    document = submission_from_form(SEIZURE_FORM | changes)
    with pytest.raises(ValidationError) as caught:
        parse_alert_submission(document, now=NOW)
    errors = field_errors(caught.value, "seizure", catalogue("en"))
    assert field in errors, errors
    assert en_message in errors[field]
    ru = field_errors(caught.value, "seizure", catalogue("ru"))
    assert ru[field] != errors[field] or not errors[field].isascii()


def test_unknown_kind_is_an_error_on_the_kind() -> None:
    document = submission_from_form(SEIZURE_FORM | {"kind": "lookout"})
    with pytest.raises(ValidationError) as caught:
        parse_alert_submission(document, now=NOW)
    assert set(field_errors(caught.value, "lookout", catalogue("en"))) == {"kind"}


def test_labels_of_fields_for_the_error_summary() -> None:
    en = catalogue("en")
    assert field_label("seizure.case.items.1.quantity", en) == "Quantity"
    assert field_label("seizure.case.items.1", en) == "Item 2"
    assert field_label("handling.code", en) == "Handling code"
    assert field_label("nominal.persons.0.document.type", en) == "Document type"
    assert field_label("risk.case.targets.0.type", en) == "Target type"
    assert field_label("seizure.case.concealment.place", catalogue("ru")) == "Где именно"


@pytest.mark.parametrize(
    ("typed", "sent"),
    [
        ("12,5", "12.5"),
        (" 12,5 ", "12.5"),
        ("1 250,75", "1250.75"),
        ("1\u00a0250,75", "1250.75"),
        ("12.5", "12.5"),
        ("12", "12"),
        ("12,5,0", "12,5,0"),  # not a number: left for validation to refuse
        ("1,2.5", "1,2.5"),
    ],
)
def test_a_decimal_comma_becomes_the_apis_dot(typed: str, sent: str) -> None:
    document = submission_from_form(SEIZURE_FORM | {"seizure.case.items.0.quantity": typed})
    assert document["case"]["items"][0]["quantity"] == sent


def test_the_comma_is_only_the_forms_kindness_not_the_apis() -> None:
    """The API contract stays dot-only: the same document with a comma is refused there."""
    document = submission_from_form(SEIZURE_FORM)
    document["case"]["items"][0]["quantity"] = "12,5"
    with pytest.raises(ValidationError):
        parse_alert_submission(document, now=NOW)


def test_no_item_at_all_is_an_error_at_each_required_item_field() -> None:
    empty_item = {k: "" for k in SEIZURE_FORM if k.startswith("seizure.case.items.0.")}
    document = submission_from_form(SEIZURE_FORM | empty_item)
    with pytest.raises(ValidationError) as caught:
        parse_alert_submission(document, now=NOW)
    errors = field_errors(caught.value, "seizure", catalogue("en"))
    assert "seizure.case.items" not in errors
    for name in ("substance", "form", "quantity", "unit"):
        assert errors[f"seizure.case.items.0.{name}"] == "This field is required."


FIELDS = (
    "handling.scheme",
    "grading.scheme",
    "nominal.persons.0.role",
    "seizure.case.observed_at",
    "seizure.case.items.0.substance",
    "seizure.case.items.0.quantity",
    "seizure.case.items.1.substance",
    "risk.case.targets.0.type",
)


@pytest.mark.parametrize(
    ("error", "anchor"),
    [
        ("seizure.case.items.0.quantity", "f-seizure-case-items-0-quantity"),
        ("seizure.case.items", "f-seizure-case-items-0-substance"),
        ("seizure.case.items.1", "f-seizure-case-items-1-substance"),
        ("tlp", "f-tlp-1"),
        ("kind", "f-kind-seizure"),
        ("handling", "f-handling-scheme"),
        ("grading", "f-grading-scheme"),
        ("nominal", "f-nominal-persons-0-role"),
        ("nominal.persons.0", "f-nominal-persons-0-role"),
        ("nominal.persons.0.document.country", "f-nominal-persons-0-role"),
        ("risk.case.targets.0", "f-risk-case-targets-0-type"),
        ("seizure.case", "f-seizure-case-observed_at"),
        ("something.else", "alert-form"),
    ],
)
def test_summary_links_land_on_a_field_that_exists(error: str, anchor: str) -> None:
    assert field_anchor(error, FIELDS) == anchor


def test_optional_sections_open_only_when_used() -> None:
    blank = {"handling.scheme": "none", "seizure.case.narrative.lang": "en", "kind": "seizure"}
    assert open_sections(blank, {}) == set()
    used = blank | {"seizure.case.route.origin": "AF", "handling.scheme": "europol"}
    assert open_sections(used, {}) == {"route", "handling"}
    assert open_sections(blank, {"nominal.persons.0.name": "x"}) == {"nominal"}
