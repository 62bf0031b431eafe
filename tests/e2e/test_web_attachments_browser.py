"""Issue 17 in a browser on a phone's screen (390 px): the officer takes a photo with the form's
camera input, officer.js sends it in parts, the alert goes out with it, and the partner's analyst
sees its thumbnail and opens the file."""

from __future__ import annotations

from typing import Any

import httpx
from playwright import async_api as playwright_api

from tests.e2e.browser import Console, shot, signed_in
from tests.integration.attachment_helpers import photo

PHONE = {"width": 390, "height": 844}


async def test_an_officer_sends_a_camera_photo_from_a_phone_and_the_analyst_opens_it(
    demo: dict[str, Any], browser: Any
) -> None:
    kg, tj = demo["nodes"]["blo-karamyk-kg"], demo["nodes"]["blo-karamyk-tj"]
    console = Console()
    page = await signed_in(browser, console, kg["url"], kg["terminal_token"], "en", viewport=PHONE)
    camera = page.locator("#f-photo")
    assert await camera.get_attribute("capture") == "environment"
    assert await camera.get_attribute("accept") == "image/*"
    # What a phone's camera hands the page is a file in this input.
    taken = photo(2_500_000, gps=True, seed=11)
    await camera.set_input_files(
        files=[{"name": "camera.jpg", "mimeType": "image/jpeg", "buffer": taken}]
    )
    await playwright_api.expect(page.locator("#f-upload-list li.ready")).to_have_count(
        1, timeout=60_000
    )
    width = await page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the form scrolls sideways with a photo in it: {width}"
    await shot(page, "390-en-officer-photo")

    await page.select_option("#f-seizure-case-items-0-substance", "heroin")
    await page.select_option("#f-seizure-case-items-0-form", "powder")
    await page.fill("#f-seizure-case-items-0-quantity", "12,5")
    await page.select_option("#f-seizure-case-items-0-unit", "kg")
    await page.select_option("#f-seizure-case-detection_method", "risk_profile")
    await page.locator("button.send").click()
    await playwright_api.expect(page.get_by_role("heading", name="Alert sent")).to_be_visible()
    alert_id = (await page.locator("#sent-alert-id").text_content() or "").strip()

    analyst = await signed_in(
        browser, console, tj["url"], tj["analyst_token"], "en", viewport=PHONE
    )
    for _ in range(60):  # the alert, then its file, reach TJ
        await analyst.goto(tj["url"] + f"/analyst/alerts/{alert_id}")
        if await analyst.locator('#attachment-1[data-state="stored"]').count():
            break
        await analyst.wait_for_timeout(500)
    thumbnail = analyst.locator("#attachment-1 img")
    await playwright_api.expect(thumbnail).to_be_visible()
    await thumbnail.scroll_into_view_if_needed()
    await analyst.wait_for_function(
        "() => { const i = document.querySelector('#attachment-1 img');"
        " return i.complete && i.naturalWidth > 0; }"
    )
    href = await analyst.locator("#attachment-1 a").get_attribute("href")
    assert href == f"/files/{alert_id}/1"
    width = await analyst.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], f"the alert page scrolls sideways: {width}"
    await shot(analyst, "390-en-analyst-alert-photo")
    # The file itself, through the same session: the photo as sent, its location stripped.
    cookies = {c["name"]: c["value"] for c in await analyst.context.cookies()}
    async with httpx.AsyncClient(cookies=cookies, verify=tj["tls"], timeout=30) as client:
        response = await client.get(tj["url"] + href)
    assert response.status_code == 200
    assert response.headers["content-disposition"].startswith("attachment;")
    assert len(response.content) > 1_000_000
    assert console.errors == []
