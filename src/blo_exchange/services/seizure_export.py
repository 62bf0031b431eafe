"""The seizures an agency may read as CSV, one row per item seized, shaped after UNODC's
Individual Drug Seizures (IDS) reporting: country and date of seizure, drug, amount and unit,
producing, departure, transit and destination countries where known, transport and
concealment.

Only fields of the case part go out, and of those only the coded ones and two short
descriptions (vehicle type, place of departure). Never written: anything of the nominal part,
the conveyance's plate or identifier, the concealment's free-text place, the narrative. Each row
carries its alert's TLP, because the rows keep the alert's marking when the file leaves the node.

Cells that a spreadsheet would take for a formula (``=``, ``+``, ``-``, ``@``, tab, CR) are
prefixed with an apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Final

from blo_exchange.services.statistics import Line, plain

__all__ = ["COLUMNS", "seizures_csv"]

COLUMNS: Final = (
    "reference",
    "tlp",
    "country_of_seizure",
    "date_of_seizure",
    "place_of_seizure",
    "drug",
    "drug_form",
    "cas_number",
    "amount",
    "unit",
    "amount_normalised",
    "unit_normalised",
    "number_of_packages",
    "producing_country",
    "place_of_departure",
    "transit_countries",
    "destination_country",
    "mode_of_transport",
    "vehicle_type",
    "conveyance_registration_country",
    "concealment_method",
    "detection_method",
)

_FORMULA_START: Final = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def seizures_csv(lines: Sequence[Line]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for line in sorted(lines, key=lambda x: (x.observed_at, x.alert_id)):
        row = (
            line.alert_id,
            line.tlp,
            line.country,
            line.observed_at[:10],
            line.crossing_point,
            line.substance,
            line.form,
            line.cas_number,
            line.quantity,
            line.unit,
            plain(line.amount),
            line.normalised_unit,
            line.package_count,
            line.origin,
            line.departure,
            " ".join(line.transit),
            line.destination,
            line.conveyance_mode,
            line.vehicle_type,
            line.registration_country,
            line.concealment_method,
            line.detection_method,
        )
        writer.writerow([_cell(value) for value in row])
    return out.getvalue()
