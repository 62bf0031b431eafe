"""Realistic example submissions: the README, the CLI simulator and tests all post these.

Both come from the KG side of the Karamyk crossing on the KG-TJ border, so one demo terminal (of
node ``blo-karamyk-kg``) can send either. The people, vehicle and numbers are invented.

They are plain JSON-ready dicts, exactly what a terminal sends. They are shared module state:
``copy.deepcopy`` before changing one.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["EXAMPLE_RISK", "EXAMPLE_SEIZURE"]

EXAMPLE_SEIZURE: Final[dict[str, Any]] = {
    "kind": "seizure",
    "border_pair": "KG-TJ",
    "crossing_point": "KG-KARAMYK",
    "tlp": "AMBER",
    "handling": {"scheme": "europol", "code": "H1"},
    "grading": {"scheme": "admiralty", "source": "B", "information": "2"},
    "case": {
        "observed_at": "2026-11-28T06:40:00.000Z",
        "items": [
            {
                "substance": "heroin",
                "form": "powder",
                "quantity": "12.5",
                "unit": "kg",
                "package_count": 25,
            }
        ],
        "concealment": {
            "method": "fuel_tank",
            "place": "Welded compartment inside the truck's second fuel tank",
        },
        "detection_method": "risk_profile",
        "conveyance": {
            "mode": "road",
            "vehicle_type": "Truck, KamAZ 5320",
            "registration_country": "TJ",
            "identifier": "0417TJ02",
        },
        "route": {
            "origin": "AF",
            "departure": "Jirgatol",
            "transit": ["TJ", "KG", "KZ"],
            "destination": "RU",
        },
        "narrative": {
            "text": (
                "Truck selected by risk profile (fuel consumption inconsistent with declared "
                "route). 25 packages of brown powder, field test positive for heroin, found in a "
                "welded compartment of the second fuel tank. Driver detained."
            ),
            "lang": "en",
        },
    },
    "nominal": {
        "persons": [
            {
                "role": "driver",
                "name": "Example Driver",
                "birth_date": "1981-04-12",
                "nationality": "TJ",
                "document": {"type": "passport", "number": "400000001", "country": "TJ"},
            }
        ],
        "companies": [{"name": "Example Logistics LLC", "country": "TJ"}],
        "phones": ["+992900000001"],
    },
}

EXAMPLE_RISK: Final[dict[str, Any]] = {
    "kind": "risk",
    "border_pair": "KG-TJ",
    "crossing_point": "KG-KARAMYK",
    "tlp": "AMBER",
    "handling": {"scheme": "europol", "code": "H2"},
    "grading": {"scheme": "admiralty", "source": "C", "information": "3"},
    "case": {
        "subject": "Heroin concealed in fuel tanks of trucks from Jirgatol",
        "indicators": [
            "Truck registered in TJ returning empty or with low-value cargo",
            "Second fuel tank with fresh welding or paint",
            "Fuel gauge reading inconsistent with tank volume",
        ],
        "modus_operandi": (
            "Heroin packed in sealed plastic inside a welded compartment of an auxiliary fuel "
            "tank; the compartment is filled around with diesel to defeat dipstick checks."
        ),
        "targets": [
            {"type": "plate", "value": "0417TJ02"},
            {"type": "route", "value": "Jirgatol - Karamyk - Osh"},
        ],
        "valid_until": "2026-12-31T23:59:59.000Z",
        "recommended_action": "Dip and scan both fuel tanks; measure the tank against its volume.",
    },
}
