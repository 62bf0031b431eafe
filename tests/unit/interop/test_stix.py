"""The STIX 2.1 mapping of alerts, checked by stix2-validator, stix2 and our JSON Schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.marking import Tlp
from blo_exchange.interop.stix import (
    RISK_TYPE,
    SEIZURE_TYPE,
    StixMappingError,
    alert_objects,
    bundle,
    definition_objects,
    report_id,
)
from blo_exchange.interop.stix_markings import TLP2_MARKING_IDS, personal_data_marking
from tests.unit.interop.stix_check import assert_valid_stix

SEIZURE_ID = "0190f3a0-0000-7000-8000-000000000001"
RISK_ID = "0190f3a0-0000-7000-8000-000000000002"


def feed_item(submission: dict[str, Any], alert_id: str, *, nominal: bool = True) -> dict[str, Any]:
    """What GET /v1/feed returns for ``submission`` once accepted by the KG Karamyk node."""
    sub = copy.deepcopy(submission)
    header = {
        "alert_id": alert_id,
        "kind": sub["kind"],
        "border_pair": sub["border_pair"],
        "crossing_point": sub["crossing_point"],
        "origin_node": "blo-karamyk-kg",
        "origin_agency": "kg-border-service",
        "created_at": "2026-11-28T06:45:00.123Z",
        "tlp": sub["tlp"],
        "handling": sub.get("handling", {"scheme": "none"}),
        "grading": sub.get("grading"),
        "agreement_ids": ["mou-kg-tj-2026"],
        "supersedes": None,
    }
    item = {"alert_id": alert_id, "stream_seq": 7, "header": header, "case": sub["case"]}
    if nominal and "nominal" in sub:
        item["nominal"] = sub["nominal"]
    return item


def feedback(outcome: str, *, narrative: bool = True) -> dict[str, Any]:
    case: dict[str, Any] = {"alert_id": SEIZURE_ID, "outcome": outcome}
    if narrative:
        case["narrative"] = {"text": "Truck stopped at TJ-KARAMYK.", "lang": "ru"}
    return {
        "kind": "feedback",
        "border_pair": "KG-TJ",
        "crossing_point": "TJ-KARAMYK",
        "tlp": "GREEN",
        "case": case,
    }


def by_type(objects: list[dict[str, Any]], stix_type: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["type"] == stix_type]


def test_definitions_are_valid_and_carry_the_oasis_tlp_2_ids() -> None:
    objects = definition_objects()
    assert_valid_stix(objects)
    markings = {o["name"]: o["id"] for o in by_type(objects, "marking-definition")}
    # The OASIS TLP 2.0 ids, copied here from the published definitions, not from our module.
    assert markings["TLP:CLEAR"] == "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487"
    assert markings["TLP:GREEN"] == "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb"
    assert markings["TLP:AMBER"] == "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421"
    assert (
        markings["TLP:AMBER+STRICT"] == "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003"
    )
    assert markings["TLP:RED"] == "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1"


def test_a_seizure_is_a_report_of_observed_data_and_a_drug_seizure() -> None:
    objects = alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID))
    assert_valid_stix(bundle([*definition_objects(), *objects], key="s")["objects"])
    (report,) = by_type(objects, "report")
    (seizure,) = by_type(objects, SEIZURE_TYPE)
    (observed,) = by_type(objects, "observed-data")
    (location,) = by_type(objects, "location")
    assert report["id"] == report_id(SEIZURE_ID)
    assert {seizure["id"], observed["id"], location["id"]} <= set(report["object_refs"])
    assert seizure["items"] == [
        {"substance": "heroin", "form": "powder", "quantity": "12.5", "unit": "kg",
         "package_count": 25}
    ]  # fmt: skip
    assert seizure["concealment"]["method"] == "fuel_tank"
    assert seizure["conveyance"]["identifier"] == "0417TJ02"
    assert seizure["route"]["transit"] == ["TJ", "KG", "KZ"]
    assert seizure["detection_method"] == "risk_profile"
    assert seizure["observed_at"] == "2026-11-28T06:40:00.000Z"
    assert location["country"] == "KG"
    agency = next(o for o in by_type(objects, "identity") if o["id"] == report["created_by_ref"])
    assert agency["identity_class"] == "organization"
    assert agency["sectors"] == ["government-national"]


def test_markings_tlp_and_handling_on_every_alert_object() -> None:
    objects = alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID))
    (handling,) = [
        o for o in by_type(objects, "marking-definition") if o["name"].startswith("blo-exchange h")
    ]
    ext = next(iter(handling["extensions"].values()))
    assert ext["handling"] == {"scheme": "europol", "code": "H1"}
    assert ext["grading"] == {"scheme": "admiralty", "source": "B", "information": "2"}
    for obj in by_type(objects, "report") + by_type(objects, SEIZURE_TYPE):
        assert obj["object_marking_refs"] == [TLP2_MARKING_IDS[Tlp.AMBER], handling["id"]]


def test_nominal_objects_carry_their_own_personal_data_marking() -> None:
    objects = alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID))
    personal = personal_data_marking()["id"]
    people = [o for o in by_type(objects, "identity") if o["identity_class"] == "individual"]
    (grouping,) = by_type(objects, "grouping")
    assert [p["name"] for p in people] == ["Example Driver"]
    assert people[0]["roles"] == ["driver"]
    nominal = [o for o in objects if o["id"] in grouping["object_refs"]] + [grouping]
    assert len(nominal) == 3  # the driver, the company, the grouping with the phones
    for obj in nominal:
        assert obj["object_marking_refs"] == [TLP2_MARKING_IDS[Tlp.AMBER], personal]
    assert next(iter(grouping["extensions"].values()))["phones"] == ["+992900000001"]
    others = [o for o in objects if o not in nominal]
    assert all(personal not in o.get("object_marking_refs", []) for o in others)


def test_without_the_nominal_part_no_personal_data_appears() -> None:
    objects = alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID, nominal=False))
    assert_valid_stix(objects)
    text = repr(objects)
    assert "Example Driver" not in text
    assert "+992900000001" not in text
    assert by_type(objects, "grouping") == []


def test_a_risk_alert_is_a_report_of_the_extension_risk_type() -> None:
    objects = alert_objects(feed_item(EXAMPLE_RISK, RISK_ID))
    assert_valid_stix(objects)
    (risk,) = by_type(objects, RISK_TYPE)
    assert risk["indicators"][0].startswith("Truck registered in TJ")
    assert {"type": "plate", "value": "0417TJ02"} in risk["targets"]
    assert risk["valid_until"] == "2026-12-31T23:59:59.000Z"
    assert by_type(objects, "indicator") == []
    (report,) = by_type(objects, "report")
    assert report["report_types"] == ["threat-report"]


def test_feedback_seized_is_a_sighting_of_the_alert() -> None:
    objects = alert_objects(feed_item(feedback("seized"), "0190f3a0-0000-7000-8000-00000000000a"))
    assert_valid_stix(objects)
    (sighting,) = by_type(objects, "sighting")
    assert sighting["sighting_of_ref"] == report_id(SEIZURE_ID)
    assert by_type(objects, "location")[0]["id"] in sighting["where_sighted_refs"]
    assert by_type(objects, "opinion") == []


@pytest.mark.parametrize(
    ("outcome", "opinion"), [("false_positive", "strongly-disagree"), ("nothing_found", "neutral")]
)
def test_feedback_without_a_seizure_is_an_opinion_and_a_note(outcome: str, opinion: str) -> None:
    objects = alert_objects(feed_item(feedback(outcome), "0190f3a0-0000-7000-8000-00000000000b"))
    assert_valid_stix(objects)
    (op,) = by_type(objects, "opinion")
    (note,) = by_type(objects, "note")
    assert op["opinion"] == opinion
    assert op["object_refs"] == note["object_refs"] == [report_id(SEIZURE_ID)]
    assert by_type(objects, "sighting") == []


def test_information_only_feedback_is_a_note() -> None:
    item = feed_item(feedback("information_only", narrative=False), "0190f3a0-0000-7000-8000-c")
    objects = alert_objects(item)
    assert_valid_stix(objects)
    assert [o["type"] for o in objects if o["type"] in {"note", "opinion", "sighting"}] == ["note"]


def test_ids_are_stable_across_exports_and_distinct_across_alerts() -> None:
    first = alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID))
    again = alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID))
    other = alert_objects(feed_item(EXAMPLE_SEIZURE, "0190f3a0-0000-7000-8000-0000000000ff"))
    assert first == again
    assert bundle(first, key="k")["id"] == bundle(again, key="k")["id"]
    own = {o["id"] for o in first if o["type"] in {"report", SEIZURE_TYPE, "observed-data"}}
    assert own.isdisjoint({o["id"] for o in other})


def test_a_bundle_holds_each_shared_object_once() -> None:
    objects = [
        *alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID)),
        *alert_objects(feed_item(EXAMPLE_RISK, RISK_ID)),
    ]
    result = bundle(objects, key="two")
    ids = [o["id"] for o in result["objects"]]
    assert len(ids) == len(set(ids))
    assert_valid_stix(result["objects"])


def test_a_precursor_keeps_its_cas_number_and_no_quantity_becomes_a_float() -> None:
    sub = copy.deepcopy(EXAMPLE_SEIZURE)
    sub["case"]["items"] = [
        {"substance": "precursor", "cas_number": "108-24-7", "form": "liquid",
         "quantity": "2000", "unit": "l", "package_count": 10},
    ]  # fmt: skip
    objects = alert_objects(feed_item(sub, SEIZURE_ID))
    assert_valid_stix(objects)
    (seizure,) = by_type(objects, SEIZURE_TYPE)
    assert seizure["items"][0]["cas_number"] == "108-24-7"
    assert seizure["items"][0]["quantity"] == "2000"


@pytest.mark.parametrize(
    "damage",
    [
        lambda i: i.pop("header"),
        lambda i: i["header"].update(tlp="PURPLE"),
        lambda i: i["header"].update(kind="lookout"),
        lambda i: i["case"].update(items=[]),
    ],
)
def test_a_malformed_item_is_refused(damage: Any) -> None:
    item = feed_item(EXAMPLE_SEIZURE, SEIZURE_ID)
    damage(item)
    with pytest.raises(StixMappingError):
        alert_objects(item)
