"""Photos on the pages, on a real in-process deployment: the officer's form takes a camera
photo (sent in resumable parts by officer.js's endpoints, or posted by the form itself without
JavaScript), and the partner's analyst sees the thumbnails and opens the files."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.attachment_helpers import PART_TYPE, photo
from tests.integration.pipeline import Deployment, deployment, eventually
from tests.integration.test_web_pages import seizure_form, sign_in

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def test_the_officer_attaches_photos_and_the_analyst_opens_them(deploy: Deployment) -> None:
    officer, analyst = (
        httpx.AsyncClient(transport=deploy.client(n)._transport, base_url=f"https://{n}.test")
        for n in (KG, TJ)
    )
    async with officer, analyst:
        csrf = await sign_in(officer, deploy.seed.terminal_tokens[KG])
        form_page = await officer.get("/officer")
        assert 'enctype="multipart/form-data"' in form_page.text
        assert re.search(
            r'<input type="file" id="f-photo"[^>]*accept="image/\*" capture', form_page.text
        )

        # officer.js's way: parts at offsets, with the session's CSRF token.
        big = photo(1_500_000, seed=5)
        start = {"length": len(big), "filename": "truck.jpg", "content_type": "image/jpeg"}
        assert (await officer.post("/officer/uploads", json=start)).status_code == 403  # no CSRF
        created = await officer.post("/officer/uploads", json=start, headers={"X-CSRF-Token": csrf})
        assert created.status_code == 200, created.text
        upload_id = created.json()["upload_id"]
        part = {"X-CSRF-Token": csrf, "Content-Type": PART_TYPE}
        first = await officer.patch(
            f"/officer/uploads/{upload_id}",
            content=big[:600_000],
            headers=part | {"Upload-Offset": "0"},
        )
        assert first.json()["offset"] == 600_000
        head = await officer.head(f"/officer/uploads/{upload_id}")
        assert head.headers["Upload-Offset"] == "600000"  # where a dropped phone resumes
        rest = await officer.patch(
            f"/officer/uploads/{upload_id}",
            content=big[600_000:],
            headers=part | {"Upload-Offset": "600000"},
        )
        assert rest.json()["state"] == "ready", rest.text

        # And the form's own way (no JavaScript): the camera's photo posted with the form.
        small = photo(80_000, seed=6)
        sent = await officer.post(
            "/officer/alerts",
            data=seizure_form(csrf) | {"attachments": upload_id},
            files=[("photo", ("camera.jpg", small, "image/jpeg"))],
        )
        assert sent.status_code == 201, sent.text
        alert_id = re.search(r'id="sent-alert-id">([0-9a-f-]{36})<', sent.text)
        assert alert_id, sent.text
        alert = alert_id.group(1)

        await sign_in(analyst, deploy.seed.analyst_tokens[TJ])

        async def both_stored() -> httpx.Response | None:
            page = await analyst.get(f"/analyst/alerts/{alert}")
            if page.status_code != 200 or page.text.count('data-state="stored"') < 2:
                return None
            return page

        page = await eventually(both_stored, timeout=30, what="both files at TJ")
        for index in (1, 2):
            assert f'src="/files/{alert}/{index}/thumbnail"' in page.text
            assert f'href="/files/{alert}/{index}"' in page.text
        thumb = await analyst.get(f"/files/{alert}/1/thumbnail")
        assert thumb.headers["content-type"] == "image/jpeg"
        opened = await analyst.get(f"/files/{alert}/1")
        assert opened.status_code == 200
        assert opened.headers["content-disposition"].startswith("attachment;")
        assert hashlib.sha256(opened.content).hexdigest() == rest.json()["sha256"]
        second = await analyst.get(f"/files/{alert}/2")
        assert second.status_code == 200
        # An alert id this analyst may not read: nothing.
        other = alert[:-1] + ("1" if alert.endswith("0") else "0")  # never the alert itself
        assert (await analyst.get(f"/files/{other}/1")).status_code == 404
