"""Controlled vocabularies of alert bodies, each with a short English label.

A member's value is its wire form (lower-case, never translated); its ``label`` is what the web
form shows. Adding a member is a compatible change for receivers that validate against a newer
version only; removing one is not, so members are never removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final

__all__ = [
    "ConcealmentMethod",
    "ConveyanceMode",
    "DetectionMethod",
    "Form",
    "Outcome",
    "PersonRole",
    "Substance",
    "Unit",
    "Vocabulary",
    "labels",
]


class Vocabulary(StrEnum):
    """Base of the vocabularies: adds the English ``label``."""

    @property
    def label(self) -> str:
        # Keyed by class: members of different vocabularies compare equal when their values do.
        return _LABELS[type(self)][self.value]


class Substance(Vocabulary):
    HEROIN = "heroin"
    OPIUM = "opium"
    HASHISH = "hashish"
    CANNABIS = "cannabis"
    METHAMPHETAMINE = "methamphetamine"
    COCAINE = "cocaine"
    NPS = "nps"
    PRECURSOR = "precursor"
    OTHER = "other"


class Form(Vocabulary):
    POWDER = "powder"
    TABLET = "tablet"
    LIQUID = "liquid"
    RESIN = "resin"
    PLANT = "plant"
    PASTE = "paste"
    CRYSTAL = "crystal"
    OTHER = "other"


class Unit(Vocabulary):
    G = "g"
    KG = "kg"
    ML = "ml"
    L = "l"
    TABLET = "tablet"
    UNIT = "unit"


class ConcealmentMethod(Vocabulary):
    NATURAL_VOID = "natural_void"
    FALSE_COMPARTMENT = "false_compartment"
    BODY_CARRY = "body_carry"
    INGESTION = "ingestion"
    LUGGAGE = "luggage"
    CARGO_MIXED = "cargo_mixed"
    FUEL_TANK = "fuel_tank"
    TYRE = "tyre"
    VEHICLE_STRUCTURE = "vehicle_structure"
    POSTAL_ITEM = "postal_item"
    OTHER = "other"


class DetectionMethod(Vocabulary):
    RISK_PROFILE = "risk_profile"
    INTELLIGENCE = "intelligence"
    RANDOM_CHECK = "random_check"
    CANINE = "canine"
    XRAY_SCANNER = "xray_scanner"
    PHYSICAL_SEARCH = "physical_search"
    DOCUMENT_CHECK = "document_check"
    OTHER = "other"


class ConveyanceMode(Vocabulary):
    ROAD = "road"
    RAIL = "rail"
    PEDESTRIAN = "pedestrian"
    AIR = "air"
    POST = "post"


class Outcome(Vocabulary):
    SEIZED = "seized"
    NOTHING_FOUND = "nothing_found"
    FALSE_POSITIVE = "false_positive"
    INFORMATION_ONLY = "information_only"


class PersonRole(Vocabulary):
    DRIVER = "driver"
    PASSENGER = "passenger"
    OWNER = "owner"
    SENDER = "sender"
    RECIPIENT = "recipient"
    COURIER = "courier"
    OTHER = "other"


_LABELS: Final[Mapping[type[Vocabulary], Mapping[str, str]]] = {
    Substance: {
        "heroin": "Heroin",
        "opium": "Opium",
        "hashish": "Hashish (cannabis resin)",
        "cannabis": "Cannabis (herb)",
        "methamphetamine": "Methamphetamine",
        "cocaine": "Cocaine",
        "nps": "New psychoactive substance (NPS)",
        "precursor": "Precursor chemical",
        "other": "Other substance",
    },
    Form: {
        "powder": "Powder",
        "tablet": "Tablets",
        "liquid": "Liquid",
        "resin": "Resin",
        "plant": "Plant material",
        "paste": "Paste",
        "crystal": "Crystals",
        "other": "Other form",
    },
    Unit: {
        "g": "grams",
        "kg": "kilograms",
        "ml": "millilitres",
        "l": "litres",
        "tablet": "tablets",
        "unit": "units",
    },
    ConcealmentMethod: {
        "natural_void": "Natural void of the vehicle",
        "false_compartment": "False compartment",
        "body_carry": "Carried on the body",
        "ingestion": "Swallowed or inserted",
        "luggage": "In luggage",
        "cargo_mixed": "Mixed with legitimate cargo",
        "fuel_tank": "In the fuel tank",
        "tyre": "In a tyre or wheel",
        "vehicle_structure": "Built into the vehicle structure",
        "postal_item": "In a postal item",
        "other": "Other concealment",
    },
    DetectionMethod: {
        "risk_profile": "Risk profile",
        "intelligence": "Prior intelligence",
        "random_check": "Random check",
        "canine": "Detector dog",
        "xray_scanner": "X-ray scanner",
        "physical_search": "Physical search",
        "document_check": "Document check",
        "other": "Other detection method",
    },
    ConveyanceMode: {
        "road": "Road",
        "rail": "Rail",
        "pedestrian": "On foot",
        "air": "Air",
        "post": "Post or courier",
    },
    Outcome: {
        "seized": "Seized",
        "nothing_found": "Nothing found",
        "false_positive": "False positive",
        "information_only": "Information only, no action taken",
    },
    PersonRole: {
        "driver": "Driver",
        "passenger": "Passenger",
        "owner": "Owner",
        "sender": "Sender",
        "recipient": "Recipient",
        "courier": "Courier",
        "other": "Other role",
    },
}


def labels(vocabulary: type[Vocabulary]) -> dict[str, str]:
    """Wire value to English label, in declaration order: the options of a ``<select>``."""
    return {member.value: member.label for member in vocabulary}
