"""Every page in each of the six languages, in a real browser against the demo's processes.

A browser set to each language (``tg-TJ``, ``uz-UZ``, ``uz-Cyrl-UZ``, ``ky-KG``...) signs in as
the KG officer, the TJ analyst and the auditor, and opens the officer's form, the live feed, an
alert, the statistics and the ledger. On each page no visible text may be the English text of a
message that the page's language translates differently: that is a string the page forgot to
translate (or a key its catalogue lacks, which falls back to English). Screenshots of every
page go to ``tests/artifacts/languages/``, which is committed for reviewers of the translations.

The detector is checked too: on the English pages it must find plenty of English messages.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from typing import Any

import httpx
import playwright.async_api as playwright_api

from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.web.messages import LANGUAGES, catalogue
from tests.e2e.browser import ARTIFACTS, Console

SHOTS = ARTIFACTS / "languages"
BROWSER_LOCALE = {
    "en": "en-GB",
    "ru": "ru-RU",
    "tg": "tg-TJ",
    "uz-Latn": "uz-UZ",  # a bare Uzbek browser gets the Latin alphabet
    "uz-Cyrl": "uz-Cyrl-UZ",
    "ky": "ky-KG",
}

# Every visible text node of the page (and option labels), trimmed.
VISIBLE_TEXT = """() => {
  const out = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const text = node.textContent.trim();
    const parent = node.parentElement;
    if (!text || !parent || parent.closest("script, style, title")) continue;
    if (parent.tagName === "OPTION" || parent.checkVisibility()) out.push(text);
  }
  return out;
}"""


def english_leftovers(lang: str) -> dict[str, str]:
    """English text → key, for every message that ``lang`` writes differently, without
    placeholders (a formatted message cannot be matched whole)."""
    english, other = catalogue("en"), catalogue(lang)
    return {
        text: key
        for key, text in english.messages.items()
        if "{" not in text and (lang == "en" or other.messages.get(key) != text)
    }


async def untranslated(page: Any, lang: str) -> list[tuple[str, str]]:
    leftovers = english_leftovers(lang)
    texts: list[str] = await page.evaluate(VISIBLE_TEXT)
    return sorted({(leftovers[t], t) for t in texts if t in leftovers})


def post_seizure(node: dict[str, Any]) -> str:
    body = copy.deepcopy(EXAMPLE_SEIZURE)
    body["case"]["items"].append(
        {"substance": "methamphetamine", "form": "tablet", "quantity": "1200", "unit": "tablet"}
    )
    response = httpx.post(
        node["url"] + "/v1/alerts",
        json=body,
        headers={
            "Authorization": f"Bearer {node['terminal_token']}",
            "Idempotency-Key": f"languages-{uuid.uuid4()}",
        },
        timeout=30,
        verify=node["tls"],
    )
    assert response.status_code == 202, response.text
    alert_id: str = response.json()["alert_id"]
    return alert_id


def wait_for_feed(node: dict[str, Any], alert_id: str) -> None:
    deadline = time.monotonic() + 20
    while True:
        response = httpx.get(
            node["url"] + "/v1/feed?limit=500",
            headers={"Authorization": f"Bearer {node['analyst_token']}"},
            timeout=30,
            verify=node["tls"],
        )
        if any(item["alert_id"] == alert_id for item in response.json()["items"]):
            return
        assert time.monotonic() < deadline, "the seizure did not reach the TJ feed"
        time.sleep(0.3)


async def signed_in(chromium: Any, console: Console, url: str, token: str, lang: str) -> Any:
    context = await chromium.new_context(
        locale=BROWSER_LOCALE[lang],
        viewport={"width": 1280, "height": 900},
        ignore_https_errors=True,
    )
    page = console.watch(await context.new_page())
    page.set_default_timeout(10_000)
    await page.goto(url + "/sign-in")
    assert await page.get_attribute("html", "lang") == lang  # negotiated from the browser
    t = catalogue(lang)
    await page.get_by_label(t("signin.token")).fill(token)
    await page.get_by_role("button", name=t("signin.submit")).click()
    await page.wait_for_load_state()
    return page


async def visit(page: Any, url: str, lang: str, name: str, found: dict[str, Any]) -> None:
    await page.goto(url)
    await page.wait_for_load_state("networkidle")
    found[f"{lang}/{name}"] = await untranslated(page, lang)
    SHOTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(SHOTS / f"{lang}-{name}.png"), full_page=True)


async def test_every_page_in_every_language(demo: dict[str, Any], browser: Any) -> None:
    expect = playwright_api.expect
    kg = demo["nodes"]["blo-karamyk-kg"]
    tj = demo["nodes"]["blo-karamyk-tj"]
    alert_id = post_seizure(kg)
    wait_for_feed(tj, alert_id)
    console = Console()
    found: dict[str, list[tuple[str, str]]] = {}

    for lang in LANGUAGES:
        t = catalogue(lang)
        officer = await signed_in(browser, console, kg["url"], kg["terminal_token"], lang)
        await visit(officer, kg["url"] + "/officer", lang, "officer", found)
        await expect(officer.get_by_role("button", name=t("officer.send"))).to_be_visible()
        await visit(officer, kg["url"] + "/officer/lookout", lang, "officer-lookout", found)
        await expect(officer.get_by_role("heading", name=t("lookout.title"))).to_be_visible()

        analyst = await signed_in(browser, console, tj["url"], tj["analyst_token"], lang)
        await visit(analyst, tj["url"] + "/analyst", lang, "analyst-feed", found)
        await expect(analyst.locator("#feed-status")).to_have_text(t("feed.status.live"))
        await visit(analyst, f"{tj['url']}/analyst/alerts/{alert_id}", lang, "analyst-alert", found)
        await expect(analyst.locator(".tlp-banner strong")).to_have_text("TLP:AMBER")
        await expect(analyst.locator("#grading")).to_contain_text(t("grading.admiralty.source.B"))
        await visit(analyst, tj["url"] + "/analyst/statistics", lang, "analyst-statistics", found)
        await expect(analyst.get_by_role("heading", name=t("stats.title"))).to_be_visible()
        await expect(analyst.locator("#chart-substance")).to_contain_text(
            t("vocab.Substance.methamphetamine")
        )
        await expect(analyst.locator("#crossing-map")).to_contain_text(t("stats.country.TJ"))
        await visit(analyst, tj["url"] + "/analyst/search", lang, "analyst-search", found)
        await expect(analyst.get_by_role("heading", name=t("search.title"))).to_be_visible()
        await visit(analyst, tj["url"] + "/analyst/retention", lang, "analyst-retention", found)
        await expect(analyst.get_by_role("heading", name=t("retention.title"))).to_be_visible()

        auditor = await signed_in(browser, console, kg["url"], demo["auditor_token"], lang)
        await visit(auditor, kg["url"] + "/auditor", lang, "auditor", found)
        await expect(
            auditor.get_by_role("heading", name=t("ledger.title"), exact=True)
        ).to_be_visible()
        for page in (officer, analyst, auditor):
            await page.context.close()

    english = {name: hits for name, hits in found.items() if name.startswith("en/")}
    others = {name: hits for name, hits in found.items() if not name.startswith("en/") and hits}
    # The detector sees English where it is: each English page shows many catalogue messages.
    assert all(len(hits) >= 5 for hits in english.values()), json.dumps(english, indent=1)
    assert others == {}, json.dumps(others, ensure_ascii=False, indent=1)
    assert console.errors == []
