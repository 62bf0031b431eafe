"""STIX 2.1 data markings for alerts: TLP 2.0, and blo-exchange's handling/grading marking.

TLP 2.0 uses the OASIS marking definitions of the TLP 2.0 extension: their ids are fixed values
published by OASIS (cti-stix-common-objects, ``extension-definition-specifications/tlp-2.0``), so
every STIX tool that knows TLP 2.0 recognises them. They are reproduced byte for byte, never
generated.

Europol/UK handling codes, source/information grading and the "personal data" flag have no
standard STIX form. They travel in a marking definition carrying blo-exchange's own
property-extension (:data:`MARKING_EXTENSION_ID`, schema in ``docs/schemas/``). Such a marking's
id is derived from its content, so the same handling and grading give the same marking-definition
in every bundle.

Not here: which objects carry which marking (``stix``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any, Final

from blo_exchange.domain.marking import Grading, Handling, Tlp

__all__ = [
    "BLO_NAMESPACE",
    "EPOCH",
    "IDENTITY_ID",
    "MARKING_EXTENSION_ID",
    "SCHEMA_TEXT",
    "TLP2_EXTENSION_ID",
    "TLP2_MARKING_IDS",
    "handling_marking",
    "marking_extension_definition",
    "personal_data_marking",
    "tlp_marking",
]

BLO_NAMESPACE: Final = uuid.UUID("8a6fbe9e-8b51-470f-be8e-31d4d03c2f0a")
"""The UUIDv5 namespace of every blo-exchange STIX id: ids are stable across exports."""

EPOCH: Final = "2026-01-01T00:00:00.000Z"
"""``created`` of objects that are definitions rather than events (markings, extensions)."""

IDENTITY_ID: Final = f"identity--{uuid.uuid5(BLO_NAMESPACE, 'blo-exchange')}"
"""The identity that created the extension definitions: the blo-exchange project."""

TLP2_EXTENSION_ID: Final = "extension-definition--60a3c5c5-0d10-413e-aab3-9e08dde9e88d"

TLP2_MARKING_IDS: Final[Mapping[Tlp, str]] = {
    Tlp.CLEAR: "marking-definition--94868c89-83c2-464b-929b-a1a8aa3c8487",
    Tlp.GREEN: "marking-definition--bab4a63c-aed9-4cf5-a766-dfca5abac2bb",
    Tlp.AMBER: "marking-definition--55d920b0-5e8b-4f79-9ee9-91f868d9b421",
    Tlp.AMBER_STRICT: "marking-definition--939a9414-2ddd-4d32-a0cd-375ea402b003",
    Tlp.RED: "marking-definition--e828b379-4e03-4974-9ac4-e53a884c97c1",
}

MARKING_EXTENSION_ID: Final = (
    f"extension-definition--{uuid.uuid5(BLO_NAMESPACE, 'extension/blo-handling-marking')}"
)

SCHEMA_TEXT: Final = "JSON Schema at docs/schemas/{} in the blo-exchange repository"


def tlp_marking(tlp: Tlp) -> dict[str, Any]:
    """The OASIS TLP 2.0 marking-definition object for ``tlp``, exactly as published."""
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": TLP2_MARKING_IDS[tlp],
        "created": "2022-10-01T00:00:00.000Z",
        "name": f"TLP:{tlp.value}",
        "extensions": {
            TLP2_EXTENSION_ID: {
                "extension_type": "property-extension",
                "tlp_2_0": tlp.value.lower(),
            }
        },
    }


def _content_marking(name: str, content: dict[str, Any]) -> dict[str, Any]:
    key = json.dumps(content, sort_keys=True, separators=(",", ":"))
    return {
        "type": "marking-definition",
        "spec_version": "2.1",
        "id": f"marking-definition--{uuid.uuid5(BLO_NAMESPACE, 'marking/' + key)}",
        "created": EPOCH,
        "created_by_ref": IDENTITY_ID,
        "name": name,
        "extensions": {
            MARKING_EXTENSION_ID: {"extension_type": "property-extension", **content},
        },
    }


def handling_marking(handling: Handling, grading: Grading | None) -> dict[str, Any] | None:
    """The handling/grading marking, or None when the alert has neither."""
    content: dict[str, Any] = {}
    if handling.scheme != "none":
        content["handling"] = handling.model_dump(mode="json", exclude_none=True)
    if grading is not None:
        content["grading"] = grading.model_dump(mode="json")
    if not content:
        return None
    parts = []
    if "handling" in content:
        parts.append(f"{handling.scheme} {handling.code}")
    if grading is not None:
        parts.append(f"{grading.scheme} {grading.source}{grading.information}")
    return _content_marking("blo-exchange handling: " + ", ".join(parts), content)


def personal_data_marking() -> dict[str, Any]:
    """The marking every object of a nominal block carries, beside the alert's TLP."""
    return _content_marking(
        "blo-exchange: personal data (nominal block)",
        {"personal_data": True},
    )


def marking_extension_definition() -> dict[str, Any]:
    """The extension-definition of the handling/grading marking property-extension."""
    return {
        "type": "extension-definition",
        "spec_version": "2.1",
        "id": MARKING_EXTENSION_ID,
        "created_by_ref": IDENTITY_ID,
        "created": EPOCH,
        "modified": EPOCH,
        "name": "blo-exchange handling and grading marking",
        "description": (
            "Europol (H0-H3) and UK 3x5x2 handling codes, Admiralty/Europol/3x5x2 source and "
            "information grading, and a personal-data flag, as a marking-definition extension."
        ),
        "schema": SCHEMA_TEXT.format("blo-handling-marking.json"),
        "version": "1.0.0",
        "extension_types": ["property-extension"],
    }
