"""The web pages in a real browser (Debian's chromium, driven by Playwright) against the demo's
processes: a KG officer files an alert, the TJ analyst sees it live and acknowledges it, the
officer's page and the auditor's ledger show it, and the auditor verifies an entry in the browser.

Then the pages as an officer at a crossing meets them: on a phone (390x844) and a tablet
(768x1024), in English and Russian, no page scrolls sideways and axe-core finds no violation; a
seizure is filed with the keyboard alone; an idle officer page stays quiet on the network.

Screenshots of every page go to ``tests/artifacts/`` on every run (those at 390 px are kept in
git). Without a chromium at ``/usr/bin/chromium`` (``scripts/ensure-chromium`` installs it) the
tests are skipped, except on CI, where they fail.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import playwright.async_api as playwright_api
import pytest

from blo_exchange.domain.examples import EXAMPLE_RISK, EXAMPLE_SEIZURE
from tests.e2e.axe import ensure_axe, violations
from tests.e2e.browser import Console, shot, signed_in


async def test_officer_to_analyst_to_auditor_in_a_browser(
    demo: dict[str, Any],
    browser: Any,
) -> None:
    expect = playwright_api.expect
    kg = demo["nodes"]["blo-karamyk-kg"]
    tj = demo["nodes"]["blo-karamyk-tj"]
    console = Console()

    analyst = await signed_in(browser, console, tj["url"], tj["analyst_token"], "en")
    await expect(analyst.locator("#feed-status")).to_have_text("Live")

    officer = await signed_in(browser, console, kg["url"], kg["terminal_token"], "en")
    assert officer.url.endswith("/officer")
    await shot(officer, "officer-form-empty")

    # Field-level validation: a quantity that is no number is refused, next to the field.
    await officer.locator("#f-seizure-case-items-0-substance").select_option("heroin")
    await officer.locator("#f-seizure-case-items-0-form").select_option("powder")
    await officer.locator("#f-seizure-case-items-0-quantity").fill("12,5,0")
    await officer.locator("#f-seizure-case-items-0-unit").select_option("kg")
    await officer.locator("#f-seizure-case-detection_method").select_option("risk_profile")
    await officer.get_by_role("button", name="Send alert").click()
    error = officer.locator("#f-seizure-case-items-0-quantity-error")
    await expect(error).to_be_visible()
    await expect(officer.locator("#error-summary")).to_be_focused()
    await shot(officer, "officer-form-errors")

    await officer.locator("#f-seizure-case-items-0-quantity").fill("12,5")  # a decimal comma
    await officer.locator("#f-seizure-case-items-0-package_count").fill("25")
    await officer.locator("label.tlp-choice", has_text="TLP:AMBER").first.click()
    for section in ("handling", "grading", "concealment", "nominal"):  # folded until opened
        await officer.locator(f"#more-{section} > summary").click()
    await officer.locator("#f-handling-scheme").select_option("europol")
    await officer.locator("#f-handling-code").select_option("H1")
    await officer.locator("#f-grading-scheme").select_option("admiralty")
    await officer.locator("#f-grading-source").select_option("B")
    await officer.locator("#f-grading-information").select_option("2")
    await officer.locator("#f-seizure-case-concealment-method").select_option("fuel_tank")
    await officer.locator("#f-seizure-case-concealment-place").fill("second fuel tank")
    await officer.locator("#f-nominal-persons-0-name").fill("Example Driver")
    await officer.locator("#f-nominal-persons-0-role").select_option("driver")
    posted_at = time.monotonic()
    await officer.get_by_role("button", name="Send alert").click()
    await expect(officer.get_by_role("heading", name="Alert sent")).to_be_visible()
    alert_id = (await officer.locator("#sent-alert-id").inner_text()).strip()
    await expect(officer.locator("#sent-recipients")).to_contain_text("tj-drug-control-agency")

    # The analyst's feed shows it live (SSE), within 5 s of sending.
    card = analyst.locator(f'li[data-alert-id="{alert_id}"]')
    await expect(card).to_be_visible(timeout=5000)
    assert time.monotonic() - posted_at < 5.0
    await expect(card.locator(".tlp")).to_have_text("TLP:AMBER")
    await shot(analyst, "analyst-feed")
    await analyst.locator("#filter-tlp").select_option("RED")
    await expect(card).to_be_hidden()
    await analyst.locator("#filter-tlp").select_option("")

    await card.get_by_role("link").click()
    await expect(analyst.locator(".tlp-banner")).to_contain_text("TLP:AMBER")
    await expect(analyst.locator("#grading")).to_contain_text("Usually reliable")
    await expect(analyst.locator(".nominal")).to_contain_text("Example Driver")
    await shot(analyst, "analyst-alert")
    await analyst.get_by_role("button", name="Acknowledge").click()
    await expect(analyst.locator("#receipt-sent")).to_be_visible()

    # The officer's page updates by itself: delivered, then acknowledged.
    state = officer.locator('#sent-table td[data-agency="tj-drug-control-agency"]')
    await expect(state).to_have_attribute("data-state", "acknowledged", timeout=10_000)
    await shot(officer, "officer-sent")

    # The auditor sees share, delivery and acknowledgement, and verifies one in the browser.
    auditor = await signed_in(browser, console, kg["url"], demo["auditor_token"], "en")
    deadline = time.monotonic() + 20
    for entry_type in ("alert_shared", "alert_delivered", "alert_acknowledged"):
        row = auditor.locator(f'#entries tr[data-type="{entry_type}"]')
        while True:
            await auditor.goto(kg["url"] + f"/auditor?alert_id={alert_id}")
            if await row.count():
                break
            assert time.monotonic() < deadline, f"no {entry_type} entry in the ledger"
            await auditor.wait_for_timeout(300)
    await expect(auditor.locator("#matrix-table")).to_contain_text("tj-drug-control-agency")
    ack_row = auditor.locator('#entries tr[data-type="alert_acknowledged"]')
    result = ack_row.locator(".verify-result")
    while True:  # the checkpoint that covers the acknowledgement may be a moment behind
        await ack_row.get_by_role("button").click()
        await expect(result).not_to_have_text("Verifying…")
        text = await result.inner_text()
        if "Verified" in text:
            break
        assert "Not yet covered" in text, text
        assert time.monotonic() < deadline, "no checkpoint covered the entry in time"
        await auditor.wait_for_timeout(500)
        await auditor.reload()
    await expect(result).to_have_class("verify-result ok")
    await shot(auditor, "auditor-ledger")

    # Russian, switched from the page; TLP labels stay as they are.
    await auditor.get_by_role("link", name="Русский").click()
    await expect(auditor.get_by_role("heading", name="Журнал", exact=True)).to_be_visible()
    await analyst.goto(tj["url"] + "/language?lang=ru&next=/analyst/alerts/" + alert_id)
    await expect(analyst.locator(".tlp-banner strong")).to_have_text("TLP:AMBER")
    await expect(analyst.get_by_role("button", name="Подтвердить получение")).to_be_visible()
    await shot(auditor, "auditor-ledger-ru")
    await shot(analyst, "analyst-alert-ru")

    assert console.errors == []


VIEWPORTS = ({"width": 390, "height": 844}, {"width": 768, "height": 1024})
SIGN_IN_LABELS = {"en": ("Access token", "Sign in"), "ru": ("Токен доступа", "Войти")}


def post_alert(node: dict[str, Any], alert: dict[str, Any] | None = None) -> str:
    """An alert filed through the API (as a terminal would), so a page has one to show."""
    response = httpx.post(
        node["url"] + "/v1/alerts",
        json=alert or EXAMPLE_SEIZURE,
        headers={
            "Authorization": f"Bearer {node['terminal_token']}",
            "Idempotency-Key": f"e2e-{uuid.uuid4()}",
        },
        timeout=30,
        verify=node["tls"],
    )
    assert response.status_code == 202, response.text
    return str(response.json()["alert_id"])


# Visible controls shorter than 44 px, unless the label around them (their real target) is not.
SMALL_TARGETS = """[...document.querySelectorAll("a, button, input, select, textarea, summary")]
    .filter(e => e.type !== "hidden" && e.offsetParent !== null)
    .filter(e => e.getBoundingClientRect().height < 44)
    .filter(e => !(e.closest("label") && e.closest("label").getBoundingClientRect().height >= 44))
    .map(e => e.outerHTML.slice(0, 80))"""


async def fits_and_passes_axe(page: Any, axe: Path, name: str, viewport: dict[str, int]) -> None:
    await page.wait_for_load_state()
    await page.wait_for_timeout(300)  # the scripts' first changes (times, hidden parts)
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"{name} scrolls sideways at {viewport['width']} px: {width}"
    assert await violations(page, axe) == [], name
    spilled = await page.evaluate(
        "[...document.querySelectorAll('.tlp')].filter(b => b.scrollWidth > b.clientWidth)"
        ".map(b => b.textContent)"
    )
    assert spilled == [], f"{name}: a TLP label spills out of its badge"
    if "-officer" in name:  # what an officer touches, one-handed: 44 px or more
        small = await page.evaluate(SMALL_TARGETS)
        assert small == [], f"{name}: targets under 44 px: {small}"
    if viewport["width"] == 390:
        await shot(page, f"390-{name}")


@pytest.mark.parametrize("lang", ["en", "ru"])
async def test_every_page_fits_a_phone_and_passes_axe(
    demo: dict[str, Any],
    browser: Any,
    lang: str,
) -> None:
    """At 390 and 768 px: no sideways scrolling, no axe-core violation, on every role's pages."""
    axe = ensure_axe()
    kg = demo["nodes"]["blo-karamyk-kg"]
    tj = demo["nodes"]["blo-karamyk-tj"]
    alert_id = post_alert(kg)
    console = Console()
    for viewport in VIEWPORTS:
        options = {"viewport": viewport, "bypass_csp": True}  # axe is injected inline
        context = await browser.new_context(locale=lang, ignore_https_errors=True, **options)
        page = console.watch(await context.new_page())
        await page.goto(kg["url"] + "/sign-in")
        await fits_and_passes_axe(page, axe, f"{lang}-sign-in", viewport)
        await context.close()

        officer = await signed_in(
            browser, console, kg["url"], kg["terminal_token"], lang, **options
        )
        await fits_and_passes_axe(officer, axe, f"{lang}-officer", viewport)
        await officer.locator("button.send").click()  # nothing filled in: the error path
        await expect_focused(officer, "#error-summary")
        await fits_and_passes_axe(officer, axe, f"{lang}-officer-errors", viewport)
        for path, name in (
            ("/officer/sent", "sent"),
            (f"/officer/alerts/{alert_id}", "alert-sent"),
        ):
            await officer.goto(kg["url"] + path)
            await fits_and_passes_axe(officer, axe, f"{lang}-officer-{name}", viewport)

        analyst = await signed_in(browser, console, tj["url"], tj["analyst_token"], lang, **options)
        await fits_and_passes_axe(analyst, axe, f"{lang}-analyst-feed", viewport)
        await analyst.goto(tj["url"] + f"/analyst/alerts/{alert_id}")
        await fits_and_passes_axe(analyst, axe, f"{lang}-analyst-alert", viewport)

        auditor = await signed_in(
            browser, console, kg["url"], demo["auditor_token"], lang, **options
        )
        await fits_and_passes_axe(auditor, axe, f"{lang}-auditor", viewport)
        for page in (officer, analyst, auditor):
            await page.context.close()
    assert console.errors == []


async def expect_focused(page: Any, selector: str) -> None:
    await playwright_api.expect(page.locator(selector)).to_be_focused()


async def tab_to(page: Any, selector: str, limit: int = 80) -> int:
    """Press Tab until the element matching ``selector`` has focus; the number of presses."""
    for presses in range(1, limit + 1):
        await page.keyboard.press("Tab")
        if await page.evaluate("s => document.activeElement.matches(s)", selector):
            return presses
    raise AssertionError(f"{selector} not reached in {limit} Tab presses")


async def test_filing_a_seizure_with_the_keyboard_alone(demo: dict[str, Any], browser: Any) -> None:
    """On a phone: an empty form's summary links take the focus to the field at fault, and a
    seizure with a decimal comma is filed without touching the mouse."""
    kg = demo["nodes"]["blo-karamyk-kg"]
    console = Console()
    context = await browser.new_context(
        locale="en", viewport=VIEWPORTS[0], ignore_https_errors=True
    )
    page = console.watch(await context.new_page())
    page.set_default_timeout(10_000)
    await page.goto(kg["url"] + "/sign-in")
    await tab_to(page, "#token")
    await page.keyboard.type(kg["terminal_token"])
    await page.keyboard.press("Enter")
    await page.wait_for_url("**/officer")

    await tab_to(page, "button.send")  # past every field, nothing filled in
    await page.keyboard.press("Enter")
    await page.wait_for_load_state()
    await expect_focused(page, "#error-summary")
    links = page.locator("#error-summary a")
    assert await links.count() >= 5
    for n in range(await links.count()):  # every link lands on a field, focused and visible
        await page.locator("#error-summary").focus()
        for _ in range(n + 1):
            await page.keyboard.press("Tab")
        target = (await links.nth(n).get_attribute("href") or "").lstrip("#")
        await page.keyboard.press("Enter")
        await expect_focused(page, f"#{target}")
        await playwright_api.expect(page.locator(f"#{target}")).to_be_visible()
        await playwright_api.expect(page.locator(f"#{target}-error")).to_be_visible()

    await page.locator("#error-summary").focus()
    stops = await tab_to(page, "#f-seizure-case-items-0-substance")
    await page.keyboard.type("Heroin")
    await page.keyboard.press("Tab")
    await page.keyboard.type("Powder")
    await page.keyboard.press("Tab")
    await page.keyboard.type("12,5")
    await page.keyboard.press("Tab")
    await page.keyboard.type("kilograms")
    stops += 4 + await tab_to(page, "#f-seizure-case-detection_method")
    await page.keyboard.type("Risk")
    stops += await tab_to(page, "button.send")
    await page.keyboard.press("Enter")
    await playwright_api.expect(page.get_by_role("heading", name="Alert sent")).to_be_visible()
    await shot(page, "390-en-officer-sent-by-keyboard")
    assert stops < 44, f"{stops} Tab stops from the error summary to sending"
    assert console.errors == []
    await context.close()


async def test_an_idle_officer_page_stays_quiet_and_compressed(
    demo: dict[str, Any],
    browser: Any,
) -> None:
    """Over 30 s without new alerts, the officer's pages make at most 2 requests (before: a
    fetch every 2 s, 15 in 30 s); a new alert still shows within seconds, and keyboard focus
    stays where it was. Responses are gzip'd, static files cached under hashed names, and the
    live stream is not compressed (it would be held back)."""
    kg = demo["nodes"]["blo-karamyk-kg"]
    console = Console()
    context = await browser.new_context(
        locale="en", viewport=VIEWPORTS[0], ignore_https_errors=True
    )
    form = console.watch(await context.new_page())
    form.set_default_timeout(15_000)
    await form.goto(kg["url"] + "/sign-in")
    await form.get_by_label("Access token").fill(kg["terminal_token"])
    await form.get_by_role("button", name="Sign in").click()
    await form.wait_for_url("**/officer")
    post_alert(kg)
    sent = console.watch(await context.new_page())
    sent.set_default_timeout(15_000)
    calls: dict[str, list[str]] = {"form": [], "sent": []}
    for name, page in (("form", form), ("sent", sent)):
        page.on(
            "request",
            lambda r, name=name: (
                calls[name].append(r.url)
                if r.resource_type in ("fetch", "xhr", "eventsource", "document")
                else None
            ),
        )
    await form.reload()
    await sent.goto(kg["url"] + "/officer/sent")
    await playwright_api.expect(sent.locator("#sent-table .sent-card").first).to_be_visible()
    await sent.locator("#sent-table .sent-card a").first.focus()
    calls["form"].clear()
    calls["sent"].clear()
    await form.wait_for_timeout(30_000)
    assert len(calls["form"]) <= 2, calls["form"]
    assert len(calls["sent"]) <= 2, calls["sent"]

    # A new alert reaches the idle list by itself, and the focus stays on a link in the list.
    posted = time.monotonic()
    card = sent.locator(f'#sent-table [data-alert="{post_alert(kg)}"]')
    await playwright_api.expect(card).to_be_visible(timeout=15_000)
    shown_after = time.monotonic() - posted
    assert await sent.evaluate("document.activeElement.closest('#sent-table') !== null")
    assert any("/officer/sent/table" in url for url in calls["sent"]), calls["sent"]

    # A hidden tab lets go of the stream: nothing is fetched until it is shown again.
    visibility = """hidden => {
        Object.defineProperty(document, "hidden", {configurable: true, get: () => hidden});
        document.dispatchEvent(new Event("visibilitychange"));
    }"""
    await sent.evaluate(visibility, True)
    calls["sent"].clear()
    unseen = sent.locator(f'#sent-table [data-alert="{post_alert(kg)}"]')
    await sent.wait_for_timeout(1000 * max(4.0, 2 * shown_after))  # twice what a shown page took
    assert calls["sent"] == []
    await playwright_api.expect(unseen).to_have_count(0)
    await sent.evaluate(visibility, False)
    await playwright_api.expect(unseen).to_be_visible(timeout=15_000)

    cookies = {c["name"]: c["value"] for c in await context.cookies()}
    async with httpx.AsyncClient(
        base_url=kg["url"], cookies=cookies, timeout=30, verify=kg["tls"]
    ) as client:
        page = await client.get("/officer", headers={"Accept-Encoding": "gzip"})
        assert page.headers["content-encoding"] == "gzip"
        assert page.headers["cache-control"] == "no-store"
        assert "accept-encoding" in page.headers["vary"].lower()
        assert int(page.headers["content-length"]) < len(page.content) / 3
        for asset in ("app", "officer", "common"):
            url = next(u for u in page.text.split('"') if u.startswith(f"/static/{asset}."))
            hashed = await client.get(url, headers={"Accept-Encoding": "gzip"})
            assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
            assert hashed.headers["content-encoding"] == "gzip"
        plain = await client.get("/static/app.css")
        assert plain.headers["cache-control"] == "no-cache"  # an old page's plain name revalidates
        async with client.stream(
            "GET", "/officer/sent/events", headers={"Accept-Encoding": "gzip"}
        ) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            assert "content-encoding" not in events.headers
            async for line in events.aiter_lines():
                if line.startswith("event: version"):
                    break
    assert console.errors == []
    await context.close()


def test_cli_sends_and_tails(demo: dict[str, Any], tmp_path: Path) -> None:
    """``alerts send`` to KG; ``feed tail`` at TJ prints it; a resend is a replay."""
    kg = demo["nodes"]["blo-karamyk-kg"]
    tj = demo["nodes"]["blo-karamyk-tj"]
    cli = [sys.executable, "-m", "blo_exchange"]
    alert = tmp_path / "risk.json"
    alert.write_text(json.dumps(EXAMPLE_RISK))
    with subprocess.Popen(
        [*cli, "feed", "tail", "--url", tj["url"], "--no-colour"],
        env=os.environ | {"BLO_TOKEN": tj["analyst_token"], "BLO_CA": demo["ca_file"]},
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as tail:
        try:
            sent = subprocess.run(
                [*cli, "alerts", "send", str(alert), "--url", kg["url"]],
                env=os.environ | {"BLO_TOKEN": kg["terminal_token"], "BLO_CA": demo["ca_file"]},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert sent.returncode == 0, sent.stderr
            alert_id = sent.stdout.split("alert_id: ")[1].split()[0]
            assert "tj-drug-control-agency" in sent.stdout
            again = subprocess.run(
                [
                    *cli,
                    "alerts",
                    "send",
                    str(alert),
                    "--url",
                    kg["url"],
                    "--token",
                    kg["terminal_token"],
                    "--ca",  # the option, as the first send used the environment variable
                    demo["ca_file"],
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert again.returncode == 0
            assert "already sent" in again.stdout
            assert tail.stdout is not None
            deadline = time.monotonic() + 20
            while True:  # the feed replays the browser test's alert first, then this one
                line = tail.stdout.readline()
                assert line, "feed tail stopped"
                assert time.monotonic() < deadline, "feed tail did not print the alert"
                if alert_id in line:
                    break
            assert line.startswith("TLP:")
            assert " risk " in line
            refused = subprocess.run(
                [*cli, "feed", "tail", "--url", tj["url"], "--token", "blo_wrong"],
                env=os.environ | {"BLO_CA": demo["ca_file"]},
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert refused.returncode == 1
            assert "did not accept the token" in refused.stderr
        finally:
            tail.terminate()
            tail.wait(10)
    for output in (sent.stdout + sent.stderr, again.stdout):
        assert kg["terminal_token"] not in output
