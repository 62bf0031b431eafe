"""Checks every STIX test shares: stix2-validator, stix2's parser and our published schemas.

The only validator warning accepted is {103}, "not a valid UUIDv4 ID": our ids are UUIDv5 on
purpose, so that exporting an alert twice gives the same objects (docs/stix-mapping.md).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import stix2
from stix2validator import ValidationOptions, validate_instance

from blo_exchange.interop.stix import CONSIGNMENT_TYPE, EXTENSION_ID, RISK_TYPE, SEIZURE_TYPE
from blo_exchange.interop.stix_markings import MARKING_EXTENSION_ID

ACCEPTED_WARNINGS = ("{103}",)
SCHEMAS = Path(__file__).resolve().parents[3] / "docs" / "schemas"


@cache
def _schema(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads((SCHEMAS / name).read_text())
    return schema


def _nominal_schema(definition: str) -> dict[str, Any]:
    root = _schema("blo-drug-seizure.json")
    return {"$defs": root["$defs"], "$ref": f"#/$defs/{definition}"}


def assert_valid_stix(objects: list[dict[str, Any]]) -> None:
    """Every error, and every warning but {103}, fails; then parse and check our schemas."""
    bundle = {"type": "bundle", "id": "bundle--6f0c8a0e-2d55-4c3b-9a57-0c4f3b1e9d11"}
    bundle["objects"] = objects  # type: ignore[assignment]
    result = validate_instance(bundle, ValidationOptions(version="2.1"))
    errors = [str(e) for e in result.errors]
    warnings = [str(w) for w in result.warnings if not str(w).startswith(_warning_prefixes(w))]
    assert (errors, warnings) == ([], []), (errors, warnings)
    parsed = stix2.parse(bundle, allow_custom=True)
    assert len(parsed.objects) == len(objects)
    for obj in objects:
        if obj["type"] in {SEIZURE_TYPE, RISK_TYPE, CONSIGNMENT_TYPE}:
            jsonschema.validate(obj, _schema("blo-drug-seizure.json"))
        extensions = obj.get("extensions", {})
        if MARKING_EXTENSION_ID in extensions:
            marking = extensions[MARKING_EXTENSION_ID]
            jsonschema.validate(marking, _schema("blo-handling-marking.json"))
        ours = extensions.get(EXTENSION_ID, {})
        if ours.get("extension_type") == "property-extension":
            which = "nominal-grouping" if obj["type"] == "grouping" else "nominal-identity"
            jsonschema.validate(ours, _nominal_schema(which))


def _warning_prefixes(warning: object) -> tuple[str, ...]:
    # A warning prints as "<object id>: {code} message".
    object_id = str(warning).split(":", 1)[0]
    return tuple(f"{object_id}: {code}" for code in ACCEPTED_WARNINGS)
