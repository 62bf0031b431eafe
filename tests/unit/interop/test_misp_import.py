"""A bundle as ``stix export`` writes it, imported by MISP's own converter (misp-stix).

This checks what a MISP instance makes of our objects, counts included. MISP has no object
template for a drug seizure, so the seizure and risk SDOs and the consignment SCO are not
converted: their reports become events with their markings as tags, and the nominal block
becomes an event of its own with the person and the company (docs/stix-mapping.md).
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.interop.stix import alert_objects, bundle
from tests.unit.interop.test_stix import RISK_ID, SEIZURE_ID, feed_item

_CONVERT = """
import json, sys, warnings
warnings.simplefilter("ignore")  # misp-stix's STIX 1.x dependencies warn on import
import stix2
from misp_stix_converter import ExternalSTIX2toMISPParser
parser = ExternalSTIX2toMISPParser()
parser.load_stix_bundle(stix2.parse(json.load(sys.stdin), allow_custom=True))
parser.parse_stix_bundle()
json.dump([
    {"info": e.info, "tags": sorted(t.name for t in e.tags),
     "objects": sorted(o.name for o in e.objects), "attributes": len(e.attributes)}
    for e in parser.misp_events
], sys.stdout)
"""


def _misp_events(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """MISP events by title. In a child process: importing misp-stix installs six's import
    hook for the whole interpreter, which would make later imports in this one warn."""
    result = subprocess.run(
        [sys.executable, "-c", _CONVERT],
        input=json.dumps(document),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    return {e["info"]: e for e in json.loads(result.stdout)}


def test_misp_imports_one_event_per_report_and_one_for_the_personal_data() -> None:
    objects = [
        *alert_objects(feed_item(EXAMPLE_SEIZURE, SEIZURE_ID)),
        *alert_objects(feed_item(EXAMPLE_RISK, RISK_ID)),
    ]
    events = _misp_events(bundle(objects, key="misp"))
    assert sorted(events) == [
        "Heroin concealed in fuel tanks of trucks from Jirgatol",
        f"Personal data of alert {SEIZURE_ID}",
        "Seizure at KG-KARAMYK: 12.5 kg heroin",
    ]
    seizure = events["Seizure at KG-KARAMYK: 12.5 kg heroin"]
    tags = set(seizure["tags"])
    assert {"tlp:amber", "border-pair:KG-TJ"} <= tags
    assert not {"tlp:red", "tlp:clear", "tlp:green", "tlp:amber+strict"} & tags
    assert any("europol h1, admiralty b2" in t.lower() for t in tags)  # the marking's name
    # What MISP keeps of the seizure itself: nothing, for want of a template (see the docstring).
    assert (seizure["attributes"], seizure["objects"]) == (0, [])
    personal = events[f"Personal data of alert {SEIZURE_ID}"]
    assert personal["objects"] == ["identity", "organization"]
    assert "tlp:amber" in personal["tags"]
    assert any("personal data" in t for t in personal["tags"])
