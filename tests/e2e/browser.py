"""What the browser tests share: the demo's processes, a headless chromium, a console watcher,
signing in and screenshots. The tests are ``test_web_browser.py`` and ``test_web_languages.py``.
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

from blo_exchange.demo.processes import client_tls

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
        credentials = json.loads((base / "blo" / "demo-credentials.json").read_text())
        for node in credentials["nodes"].values():  # the nodes speak HTTPS, from the demo CA
            node["tls"] = client_tls(credentials)
        yield credentials
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


async def signed_in(
    browser: Any, console: Console, url: str, token: str, lang: str, **context_options: Any
) -> Any:
    # The demo CA is not in Chromium's store; the certificate itself is checked by the e2e
    # HTTP tests (httpx with the CA), here only the pages are.
    context = await browser.new_context(locale=lang, ignore_https_errors=True, **context_options)
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
