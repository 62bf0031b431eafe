"""The web pages in a real browser (Debian's chromium, driven by Playwright) against the demo's
processes: a KG officer files an alert, the TJ analyst sees it live and acknowledges it, the
officer's page and the auditor's ledger show it, and the auditor verifies an entry in the browser.

Screenshots of every page go to ``tests/artifacts/`` on every run. Without a chromium at
``/usr/bin/chromium`` (``scripts/ensure-chromium`` installs it) the test is skipped.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import playwright.async_api as playwright_api
import pytest

from blo_exchange.domain.examples import EXAMPLE_RISK

CHROMIUM = Path(os.environ.get("BLO_CHROMIUM", "/usr/bin/chromium"))
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
READY_LINE = "Press Ctrl-C to stop."
BROWSER_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="module")
def demo(runtime_dir: Path) -> Iterator[dict[str, Any]]:
    base = Path(os.path.realpath(runtime_dir)) / f"web-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    base.chmod(0o711)
    output = base / "demo.out"
    with output.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "blo_exchange", "demo", "--data-dir", str(base / "blo")],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        deadline = time.monotonic() + 90
        while READY_LINE not in output.read_text():
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("demo did not start:\n" + output.read_text())
            time.sleep(0.2)
        yield json.loads((base / "blo" / "demo-credentials.json").read_text())
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    if not CHROMIUM.exists():
        message = f"no chromium at {CHROMIUM} (scripts/ensure-chromium installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must run the browser tests, never skip them quietly
        pytest.skip(message)
    async with playwright_api.async_playwright() as p:
        launched = await p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=BROWSER_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


class Console:
    """Errors the pages log (a CSP violation, a script error) fail the test."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def watch(self, page: Any) -> Any:
        def on_console(message: Any) -> None:
            # The refused form is answered 422 on purpose; the browser logs that status.
            if message.type == "error" and "status of 422" not in message.text:
                self.errors.append(f"{page.url}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        return page


async def signed_in(browser: Any, console: Console, url: str, token: str, lang: str) -> Any:
    # The demo CA is not in Chromium's store; the certificate itself is checked by the e2e
    # HTTP tests (httpx with the CA), here only the pages are.
    context = await browser.new_context(locale=lang, ignore_https_errors=True)
    page = console.watch(await context.new_page())
    page.set_default_timeout(10_000)
    await page.goto(url + "/sign-in")
    await page.get_by_label("Access token" if lang == "en" else "Токен доступа").fill(token)
    await page.get_by_role("button", name="Sign in" if lang == "en" else "Войти").click()
    await page.wait_for_load_state()
    return page


async def shot(page: Any, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"web-{name}.png"), full_page=True)


async def test_officer_to_analyst_to_auditor_in_a_browser(
    demo: dict[str, Any], browser: Any
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

    # Field-level validation: a quantity with a comma is refused, next to the field.
    await officer.locator("#f-seizure-case-items-0-substance").select_option("heroin")
    await officer.locator("#f-seizure-case-items-0-form").select_option("powder")
    await officer.locator("#f-seizure-case-items-0-quantity").fill("12,5")
    await officer.locator("#f-seizure-case-items-0-unit").select_option("kg")
    await officer.locator("#f-seizure-case-detection_method").select_option("risk_profile")
    await officer.get_by_role("button", name="Send alert").click()
    error = officer.locator("#f-seizure-case-items-0-quantity-error")
    await expect(error).to_be_visible()
    await expect(officer.locator("#error-summary")).to_be_focused()
    await shot(officer, "officer-form-errors")

    await officer.locator("#f-seizure-case-items-0-quantity").fill("12.5")
    await officer.locator("#f-seizure-case-items-0-package_count").fill("25")
    await officer.locator("label.tlp-choice", has_text="TLP:AMBER").first.click()
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
