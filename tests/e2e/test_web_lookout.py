"""The lookout and search pages in a real browser against the demo's processes: an officer at
Karamyk (TJ) types a plate with Cyrillic letters and sees the KG risk alert it matches; the TJ
analyst finds it by name. At a phone's and a tablet's width, in English and Russian: no sideways
scrolling, no axe-core violation, officer targets of 44 px or more. Screenshots go to
``tests/artifacts/web-390-<lang>-{lookout,lookout-hit,search}.png``.
"""

# ruff: noqa: RUF001
from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from blo_exchange.domain.examples import EXAMPLE_RISK
from tests.e2e.axe import ensure_axe, violations
from tests.e2e.browser import Console, shot, signed_in

VIEWPORTS = ({"width": 390, "height": 844}, {"width": 768, "height": 1024})
SMALL_TARGETS = """[...document.querySelectorAll("a, button, input, select, textarea")]
    .filter(e => e.type !== "hidden" && e.offsetParent !== null)
    .filter(e => e.getBoundingClientRect().height < 44)
    .map(e => e.outerHTML.slice(0, 80))"""


def post_risk(node: dict[str, Any], plate: str) -> str:
    body = copy.deepcopy(EXAMPLE_RISK)
    body["case"]["targets"] = [
        {"type": "plate", "value": plate},
        {"type": "person", "value": "RAKHIMOV Alisher"},
    ]
    until = datetime.now(UTC) + timedelta(days=3)
    body["case"]["valid_until"] = until.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    response = httpx.post(
        node["url"] + "/v1/alerts",
        json=body,
        headers={
            "Authorization": f"Bearer {node['terminal_token']}",
            "Idempotency-Key": f"e2e-{uuid.uuid4()}",
        },
        timeout=30,
        verify=node["tls"],
    )
    assert response.status_code == 202, response.text
    return str(response.json()["alert_id"])


async def check(page: Any, axe: Path, name: str, viewport: dict[str, int]) -> None:
    await page.wait_for_load_state()
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name} scrolls sideways at {viewport['width']} px: {width}"
    assert await violations(page, axe) == [], name
    if "lookout" in name:
        small = await page.evaluate(SMALL_TARGETS)
        assert small == [], f"{name}: targets under 44 px: {small}"
    if viewport["width"] == 390:
        await shot(page, f"390-{name}")


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_lookout_and_search_pages_in_a_browser(
    demo: dict[str, Any], browser: Any, lang: str
) -> None:
    axe = ensure_axe()
    kg, tj = demo["nodes"]["blo-karamyk-kg"], demo["nodes"]["blo-karamyk-tj"]
    plate = f"0{uuid.uuid4().int % 10}A{uuid.uuid4().int % 1000:03d}BC"
    alert_id = post_risk(kg, plate)
    cyrillic = plate.translate(str.maketrans("ABC", "АВС"))
    console = Console()
    for viewport in VIEWPORTS:
        options = {"viewport": viewport, "bypass_csp": True}  # axe is injected inline
        officer = await signed_in(
            browser, console, tj["url"], tj["terminal_token"], lang, **options
        )
        await officer.goto(tj["url"] + "/officer/lookout")
        await check(officer, axe, f"{lang}-lookout", viewport)
        await officer.locator("#lookout-value").fill(cyrillic)
        await officer.locator("#lookout-form button[type=submit]").click()
        await officer.wait_for_selector(f'[data-alert="{alert_id}"]', timeout=20_000)
        await check(officer, axe, f"{lang}-lookout-hit", viewport)

        analyst = await signed_in(browser, console, tj["url"], tj["analyst_token"], lang, **options)
        await analyst.goto(tj["url"] + "/analyst/search?field=person&q=Рахимов")
        await analyst.wait_for_selector(f'[data-alert="{alert_id}"]')
        await check(analyst, axe, f"{lang}-search", viewport)
        for page in (officer, analyst):
            await page.context.close()
    assert console.errors == []
