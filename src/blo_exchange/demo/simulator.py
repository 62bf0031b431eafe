"""``blo-exchange demo --simulate``: terminals posting realistic alerts every few seconds.

Varies the example seizure and risk alerts (substance, quantity, crossing, vehicle) so the feeds
and the ledger fill with something that looks like a day at the Karamyk and Fotehobod crossings.
Now and then, after a risk alert, the officer across the border checks its plate (typed with
Cyrillic letters), so the sender's *Sent alerts* shows a lookout hit.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import random
import ssl
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from blo_exchange.domain.ids import format_time

__all__ = ["random_alert", "simulate_alerts"]

log = logging.getLogger(__name__)

_CROSSINGS = {
    "blo-karamyk-kg": ("KG-TJ", "KG-KARAMYK"),
    "blo-karamyk-tj": ("KG-TJ", "TJ-KARAMYK"),
    "blo-fotehobod-tj": ("TJ-UZ", "TJ-FOTEHOBOD"),
    "blo-oybek-uz": ("TJ-UZ", "UZ-OYBEK"),
}
_SUBSTANCES = [
    ("heroin", "powder", "kg"),
    ("opium", "paste", "kg"),
    ("hashish", "resin", "kg"),
    ("methamphetamine", "crystal", "g"),
    ("cannabis", "plant", "kg"),
]
_CONCEALMENTS = ["fuel_tank", "false_compartment", "tyre", "cargo_mixed", "luggage"]
_ACROSS = {
    "blo-karamyk-kg": "blo-karamyk-tj",
    "blo-karamyk-tj": "blo-karamyk-kg",
    "blo-fotehobod-tj": "blo-oybek-uz",
    "blo-oybek-uz": "blo-fotehobod-tj",
}
_CYRILLIC_LOOKALIKES = str.maketrans(
    "ABCEHKMOPTX", "\u0410\u0412\u0421\u0415\u041d\u041a\u041c\u041e\u0420\u0422\u0425"
)


def random_alert(node_id: str, rng: random.Random, now: datetime | None = None) -> dict[str, Any]:
    pair, crossing = _CROSSINGS[node_id]
    if rng.random() < 0.75:
        alert = copy.deepcopy(EXAMPLE_SEIZURE)
        substance, form, unit = rng.choice(_SUBSTANCES)
        item = alert["case"]["items"][0]
        item.update(
            substance=substance,
            form=form,
            unit=unit,
            quantity=f"{rng.randint(1, 400)}.{rng.randint(0, 9)}",
            package_count=rng.randint(1, 60),
        )
        alert["case"]["concealment"]["method"] = rng.choice(_CONCEALMENTS)
        alert["case"]["observed_at"] = format_time(now or datetime.now(UTC))
        alert["case"]["conveyance"]["identifier"] = (
            f"{rng.randint(1000, 9999)}TJ0{rng.randint(1, 9)}"
        )
    else:
        alert = copy.deepcopy(EXAMPLE_RISK)
        alert["case"]["targets"][0]["value"] = f"{rng.randint(1000, 9999)}TJ0{rng.randint(1, 9)}"
        valid_until = (now or datetime.now(UTC)) + timedelta(days=rng.randint(2, 30))
        alert["case"]["valid_until"] = format_time(valid_until)
    alert["border_pair"], alert["crossing_point"] = pair, crossing
    if pair == "TJ-UZ":
        alert["tlp"] = "GREEN"  # the TJ-UZ protocol allows up to AMBER, without personal data
        alert.pop("nominal", None)
        if "route" in alert["case"]:
            alert["case"]["route"]["transit"] = ["TJ", "UZ"]
    return alert


async def simulate_alerts(
    credentials: dict[str, Any], stop: asyncio.Event, *, interval: float = 3.0, seed: int = 7
) -> None:
    # Demo data, not security: a seeded generator makes a run reproducible.
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    nodes = list(credentials["nodes"].items())
    ca_file = credentials.get("ca_file")
    verify = True if ca_file is None else ssl.create_default_context(cafile=ca_file)
    async with httpx.AsyncClient(timeout=10.0, verify=verify) as client:
        while not stop.is_set():
            node_id, node = rng.choice(nodes)
            alert = random_alert(node_id, rng)
            response = await client.post(
                node["url"] + "/v1/alerts",
                json=alert,
                headers={
                    "Authorization": f"Bearer {node['terminal_token']}",
                    "Idempotency-Key": str(uuid.uuid4()),
                },
            )
            if response.status_code == 202:
                body = response.json()
                print(
                    f"posted {body['alert_id']} from {node_id} to {', '.join(body['recipients'])}"
                )
                if body["kind"] == "risk" and rng.random() < 0.5:
                    await _lookout(client, credentials, _ACROSS[node_id], alert, stop)
            else:
                log.warning("simulated post refused: %s %s", response.status_code, response.text)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)


async def _lookout(
    client: httpx.AsyncClient,
    credentials: dict[str, Any],
    node_id: str,
    risk: dict[str, Any],
    stop: asyncio.Event,
) -> None:
    """The officer across the border checks the risk alert's plate, in Cyrillic letters."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=1.0)  # the alert crosses the border
    node = credentials["nodes"][node_id]
    plate = str(risk["case"]["targets"][0]["value"]).translate(_CYRILLIC_LOOKALIKES)
    response = await client.post(
        node["url"] + "/v1/lookout",
        json={"field": "plate", "value": plate},
        headers={"Authorization": f"Bearer {node['terminal_token']}"},
    )
    if response.status_code == 200:
        print(f"lookout at {node_id}: {len(response.json()['hits'])} hit(s)")
    else:
        log.warning("simulated lookout refused: %s", response.status_code)
