"""The STIX 2.1 mapping of alerts (``docs/stix-mapping.md`` gives the reasons).

Input is a decrypted feed item, exactly what ``GET /v1/feed`` returns to an analyst
(``{"alert_id", "stream_seq", "header", "case", "nominal"?}``): the mapping can show no more than
the reader's feed, and the nominal block appears only when the feed item carries it. Output is a
list of STIX 2.1 objects as JSON-ready dicts.

- seizure: ``report`` → ``observed-data`` (of a ``blo-consignment`` SCO) + ``blo-drug-seizure``
  SDO, the crossing point as ``location``, the origin agency as ``identity``;
- risk: ``report`` → ``blo-risk-alert`` SDO (not ``indicator``: see the document);
- feedback: ``sighting`` (seized) or ``opinion`` + ``note`` (nothing found, false positive),
  or a ``note`` alone (information only), each about the original alert's report;
- nominal block: ``identity`` objects (individual, organization) and a ``grouping`` holding the
  phone numbers, each marked as personal data as well as with the alert's TLP.

Ids are UUIDv5 of the alert id and the object's role, so exporting an alert twice gives the same
objects. Not here: TAXII paging, who may read (``services.feed``), bundles on disk (``cli``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from typing import Any, Final

from blo_exchange.domain.cases import (
    STORED_CASE,
    FeedbackCase,
    RiskCase,
    SeizureCase,
)
from blo_exchange.domain.ids import country_of_crossing_point, format_time, parse_time
from blo_exchange.domain.marking import Grading, Handling, Tlp
from blo_exchange.domain.nominal import NominalBlock
from blo_exchange.domain.vocab import Outcome
from blo_exchange.interop.stix_markings import (
    BLO_NAMESPACE,
    EPOCH,
    IDENTITY_ID,
    SCHEMA_TEXT,
    TLP2_MARKING_IDS,
    handling_marking,
    marking_extension_definition,
    personal_data_marking,
    tlp_marking,
)

__all__ = [
    "CONSIGNMENT_TYPE",
    "EXTENSION_ID",
    "RISK_TYPE",
    "SEIZURE_TYPE",
    "StixMappingError",
    "alert_objects",
    "bundle",
    "definition_objects",
    "report_id",
]

SEIZURE_TYPE: Final = "blo-drug-seizure"
RISK_TYPE: Final = "blo-risk-alert"
CONSIGNMENT_TYPE: Final = "blo-consignment"
NOMINAL_EXTENSION: Final = "blo-nominal"
"""Key of the property values the nominal extension adds to ``identity`` and ``grouping``."""

EXTENSION_ID: Final = f"extension-definition--{uuid.uuid5(BLO_NAMESPACE, 'extension/blo-drug')}"
"""The extension-definition of the drug seizure, risk alert and consignment types."""


class StixMappingError(ValueError):
    """A feed item that is not a well-formed alert (it cannot come from a verified envelope)."""


def _id(stix_type: str, alert_id: str, role: str) -> str:
    return f"{stix_type}--{uuid.uuid5(BLO_NAMESPACE, f'alert/{alert_id}/{role}')}"


def report_id(alert_id: str) -> str:
    """The id of an alert's report: what feedback about that alert points at."""
    return _id("report", alert_id, "report")


def _agency_id(agency: str) -> str:
    return f"identity--{uuid.uuid5(BLO_NAMESPACE, f'agency/{agency}')}"


def _location_id(crossing_point: str) -> str:
    return f"location--{uuid.uuid5(BLO_NAMESPACE, f'crossing-point/{crossing_point}')}"


def definition_objects() -> list[dict[str, Any]]:
    """Every definition an alert's objects may refer to: the project identity, the extension
    definitions, the five TLP 2.0 markings and the personal-data marking."""
    return [
        *_extension_objects(),
        *(tlp_marking(tlp) for tlp in Tlp),
        personal_data_marking(),
    ]


def _extension_objects() -> list[dict[str, Any]]:
    return [
        {
            "type": "identity",
            "spec_version": "2.1",
            "id": IDENTITY_ID,
            "created": EPOCH,
            "modified": EPOCH,
            "name": "blo-exchange",
            "description": "Secure alert exchange of the UNODC Border Liaison Offices.",
            "identity_class": "system",
        },
        {
            "type": "extension-definition",
            "spec_version": "2.1",
            "id": EXTENSION_ID,
            "created_by_ref": IDENTITY_ID,
            "created": EPOCH,
            "modified": EPOCH,
            "name": "blo-exchange drug seizure and risk alert",
            "description": (
                "A drug seizure at a border crossing (items with substance, form, quantity as a "
                "decimal string, unit and packages; concealment; detection; conveyance; route), "
                "a drug-trafficking risk alert, the consignment observed, and the personal data "
                "of a nominal block."
            ),
            "schema": SCHEMA_TEXT.format("blo-drug-seizure.json"),
            "version": "1.0.0",
            "extension_types": ["new-sdo", "new-sco", "property-extension"],
        },
        marking_extension_definition(),
    ]


def _stamp(value: str) -> str:
    return format_time(parse_time(value))


class _Alert:
    """One feed item, parsed, with the markings and references its objects share."""

    def __init__(self, item: Mapping[str, Any], agency_names: Mapping[str, str]) -> None:
        try:
            header = item["header"]
            self.alert_id = str(item["alert_id"])
            self.kind = str(header["kind"])
            self.created = _stamp(str(header["created_at"]))
            self.tlp = Tlp(header["tlp"])
            self.handling = Handling.model_validate(header.get("handling") or {"scheme": "none"})
            grading = header.get("grading")
            self.grading = None if grading is None else Grading.model_validate(grading)
            self.agency = str(header["origin_agency"])
            self.border_pair = str(header["border_pair"])
            self.crossing_point = str(header["crossing_point"])
            self.case = item["case"]
            nominal = item.get("nominal")
            self.nominal = None if nominal is None else NominalBlock.model_validate(nominal)
        except (KeyError, TypeError, ValueError) as exc:
            raise StixMappingError(f"not a well-formed feed item: {exc}") from exc
        self.agency_name = agency_names.get(self.agency, self.agency)
        self.creator = _agency_id(self.agency)
        self.location = _location_id(self.crossing_point)
        extra = handling_marking(self.handling, self.grading)
        self.extra_markings = [] if extra is None else [extra]
        self.marking_refs = [TLP2_MARKING_IDS[self.tlp], *(m["id"] for m in self.extra_markings)]

    def base(self, stix_type: str, role: str) -> dict[str, Any]:
        return {
            "type": stix_type,
            "spec_version": "2.1",
            "id": _id(stix_type, self.alert_id, role),
            "created_by_ref": self.creator,
            "created": self.created,
            "modified": self.created,
            "object_marking_refs": list(self.marking_refs),
        }

    def context_objects(self) -> list[dict[str, Any]]:
        """What the alert's objects refer to: the extension definitions, the origin agency, the
        crossing point and the markings. Each alert carries them, so that any slice of a feed
        (a TAXII page, one alert exported) is complete on its own."""
        country = country_of_crossing_point(self.crossing_point)
        return [
            *_extension_objects(),
            {
                "type": "identity",
                "spec_version": "2.1",
                "id": self.creator,
                "created": EPOCH,
                "modified": EPOCH,
                "name": self.agency_name,
                "identity_class": "organization",
                "sectors": ["government-national"],
                "external_references": [
                    {"source_name": "blo-exchange", "external_id": self.agency}
                ],
            },
            {
                "type": "location",
                "spec_version": "2.1",
                "id": self.location,
                "created": EPOCH,
                "modified": EPOCH,
                "name": f"{self.crossing_point} border crossing point ({self.border_pair})",
                "country": country,
                "external_references": [
                    {"source_name": "blo-exchange", "external_id": self.crossing_point}
                ],
            },
            tlp_marking(self.tlp),
            *self.extra_markings,
            *([personal_data_marking()] if self.nominal is not None else []),
        ]


def alert_objects(
    item: Mapping[str, Any], *, agency_names: Mapping[str, str] | None = None
) -> list[dict[str, Any]]:
    """The STIX objects of one decrypted feed item, in a fixed order, with what they refer to.

    ``agency_names`` maps agency ids to display names (the directory's); ids are used without.
    Raises :class:`StixMappingError` for an item that is not a well-formed alert.
    """
    alert = _Alert(item, agency_names or {})
    try:
        if alert.kind == "seizure":
            case_seizure = SeizureCase.model_validate(alert.case, context=STORED_CASE)
            objects = _seizure(alert, case_seizure)
        elif alert.kind == "risk":
            objects = _risk(alert, RiskCase.model_validate(alert.case, context=STORED_CASE))
        elif alert.kind == "feedback":
            objects = _feedback(alert, FeedbackCase.model_validate(alert.case))
        else:
            raise StixMappingError(f"unknown alert kind {alert.kind!r}")
    except ValueError as exc:  # pydantic.ValidationError is a ValueError
        raise StixMappingError(f"alert {alert.alert_id}: {exc}") from exc
    return [*alert.context_objects(), *objects, *_nominal(alert)]


def _seizure(alert: _Alert, case: SeizureCase) -> list[dict[str, Any]]:
    items = [i.model_dump(mode="json", exclude_none=True) for i in case.items]
    observed_at = format_time(case.observed_at)
    consignment = {
        "type": CONSIGNMENT_TYPE,
        "spec_version": "2.1",
        "id": _id(CONSIGNMENT_TYPE, alert.alert_id, "consignment"),
        "items": items,
        "object_marking_refs": list(alert.marking_refs),
        "extensions": {EXTENSION_ID: {"extension_type": "new-sco"}},
    }
    observed = {
        **alert.base("observed-data", "observed-data"),
        "first_observed": observed_at,
        "last_observed": observed_at,
        "number_observed": 1,
        "object_refs": [consignment["id"]],
    }
    seizure: dict[str, Any] = {
        **alert.base(SEIZURE_TYPE, "seizure"),
        "name": _seizure_name(case, alert.crossing_point),
        "observed_at": observed_at,
        "border_pair": alert.border_pair,
        "crossing_point_ref": alert.location,
        "observed_data_refs": [observed["id"]],
        "items": items,
        "detection_method": case.detection_method.value,
        "external_references": [{"source_name": "blo-exchange", "external_id": alert.alert_id}],
        "extensions": {EXTENSION_ID: {"extension_type": "new-sdo"}},
    }
    for name in ("concealment", "conveyance", "route"):
        value = getattr(case, name)
        if value is not None:
            seizure[name] = value.model_dump(mode="json", exclude_none=True)
    if case.route is not None and not case.route.transit:
        seizure["route"].pop("transit", None)
    if case.narrative is not None:
        seizure["description"] = case.narrative.text
        seizure["lang"] = case.narrative.lang
    report = _report(alert, "observed-data", seizure["name"], [seizure, observed])
    return [consignment, observed, seizure, report]


def _seizure_name(case: SeizureCase, crossing_point: str) -> str:
    what = ", ".join(f"{i.quantity} {i.unit.value} {i.substance.value}" for i in case.items[:3])
    more = "" if len(case.items) <= 3 else f" and {len(case.items) - 3} more"
    return f"Seizure at {crossing_point}: {what}{more}"


def _risk(alert: _Alert, case: RiskCase) -> list[dict[str, Any]]:
    risk: dict[str, Any] = {
        **alert.base(RISK_TYPE, "risk"),
        "name": case.subject,
        "border_pair": alert.border_pair,
        "crossing_point_ref": alert.location,
        "indicators": list(case.indicators),
        "external_references": [{"source_name": "blo-exchange", "external_id": alert.alert_id}],
        "extensions": {EXTENSION_ID: {"extension_type": "new-sdo"}},
    }
    if case.modus_operandi is not None:
        risk["modus_operandi"] = case.modus_operandi
    if case.targets:
        risk["targets"] = [t.model_dump(mode="json") for t in case.targets]
    if case.valid_until is not None:
        risk["valid_until"] = format_time(case.valid_until)
    if case.recommended_action is not None:
        risk["recommended_action"] = case.recommended_action
    if case.narrative is not None:
        risk["description"] = case.narrative.text
        risk["lang"] = case.narrative.lang
    return [risk, _report(alert, "threat-report", case.subject, [risk])]


def _report(
    alert: _Alert, report_type: str, name: str, subjects: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    return {
        **alert.base("report", "report"),
        "name": name,
        "report_types": [report_type],
        "published": alert.created,
        "object_refs": [
            *(s["id"] for s in subjects),
            alert.location,
            alert.creator,
            *(_nominal_refs(alert)),
        ],
        "labels": [f"border-pair:{alert.border_pair}", f"tlp:{alert.tlp.value.lower()}"],
        "external_references": [{"source_name": "blo-exchange", "external_id": alert.alert_id}],
    }


_OPINIONS: Final[Mapping[Outcome, str]] = {
    Outcome.FALSE_POSITIVE: "strongly-disagree",
    Outcome.NOTHING_FOUND: "neutral",
}


def _feedback(alert: _Alert, case: FeedbackCase) -> list[dict[str, Any]]:
    about = report_id(case.alert_id)
    own = [{"source_name": "blo-exchange", "external_id": alert.alert_id}]
    text = f"Feedback on alert {case.alert_id}: {case.outcome.label}."
    if case.narrative is not None:
        text = f"{text}\n\n{case.narrative.text}"
    note: dict[str, Any] = {
        **alert.base("note", "note"),
        "abstract": f"{case.outcome.label} ({case.outcome.value})",
        "content": text,
        "object_refs": [about],
        "labels": [f"outcome:{case.outcome.value}"],
        "external_references": own,
    }
    if case.narrative is not None:
        note["lang"] = case.narrative.lang
    if case.outcome is Outcome.SEIZED:
        sighting = {
            **alert.base("sighting", "sighting"),
            "first_seen": alert.created,
            "last_seen": alert.created,
            "count": 1,
            "sighting_of_ref": about,
            "where_sighted_refs": [alert.location],
            "summary": False,
            "description": text,
            "external_references": own,
        }
        return [sighting]
    if case.outcome in _OPINIONS:
        opinion = {
            **alert.base("opinion", "opinion"),
            "opinion": _OPINIONS[case.outcome],
            "explanation": text,
            "object_refs": [about],
            "external_references": own,
        }
        return [opinion, note]
    return [note]


def _nominal_refs(alert: _Alert) -> list[str]:
    return [o["id"] for o in _nominal(alert) if o["type"] == "grouping"]


def _nominal(alert: _Alert) -> list[dict[str, Any]]:
    block = alert.nominal
    if block is None:
        return []
    marks = [TLP2_MARKING_IDS[alert.tlp], personal_data_marking()["id"]]
    objects: list[dict[str, Any]] = []

    def entity(role: str, name: str, cls: str, details: dict[str, Any]) -> dict[str, Any]:
        obj: dict[str, Any] = {
            **alert.base("identity", role),
            "object_marking_refs": list(marks),
            "name": name,
            "identity_class": cls,
        }
        if details:
            obj["extensions"] = {EXTENSION_ID: {"extension_type": "property-extension", **details}}
        return obj

    for n, person in enumerate(block.persons):
        data = person.model_dump(mode="json", exclude_none=True)
        name = data.pop("name")
        role = data.pop("role")
        obj = entity(f"nominal/person/{n}", name, "individual", data)
        obj["roles"] = [role]
        objects.append(obj)
    for n, company in enumerate(block.companies):
        data = company.model_dump(mode="json", exclude_none=True)
        objects.append(entity(f"nominal/company/{n}", data.pop("name"), "organization", data))
    grouping: dict[str, Any] = {
        **alert.base("grouping", "nominal"),
        "object_marking_refs": list(marks),
        "name": f"Personal data of alert {alert.alert_id}",
        "context": "suspicious-activity",
        "object_refs": [o["id"] for o in objects] or [alert.creator],
    }
    if block.phones:
        grouping["extensions"] = {
            EXTENSION_ID: {"extension_type": "property-extension", "phones": list(block.phones)}
        }
    return [*objects, grouping]


def bundle(objects: Iterable[dict[str, Any]], *, key: str) -> dict[str, Any]:
    """A STIX bundle of ``objects``, each id once (first wins); its id is derived from ``key``."""
    seen: dict[str, dict[str, Any]] = {}
    for obj in objects:
        seen.setdefault(obj["id"], obj)
    return {
        "type": "bundle",
        "id": f"bundle--{uuid.uuid5(BLO_NAMESPACE, f'bundle/{key}')}",
        "objects": list(seen.values()),
    }
