"""Issue 17 on real servers: photos and scans sealed with an alert, their ciphertext through the
NATS Object Store, fetched, checked and kept sealed by the partner; refused to anyone the
envelope gives no key to; a thumbnail ahead of the file; an upload resumed after a drop."""

from __future__ import annotations

import hashlib
import io
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import select

from blo_exchange.bus.objects import AttachmentBucket, chunk_subject
from blo_exchange.db.attachment_store import SqlUploadStore
from blo_exchange.db.engine import session_factory
from blo_exchange.db.spool import FileSpool
from blo_exchange.db.tables import AttachmentRow
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.uploads import UploadService
from tests.integration.attachment_helpers import (
    create,
    idempotency,
    pdf,
    photo,
    send_part,
    upload,
)
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"
PHOTO_5MB = photo(5 * 1024 * 1024, gps=True)


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


async def post_with(deploy: Deployment, node: str, uploads: list[str], **fields: Any) -> str:
    body = EXAMPLE_SEIZURE | {"attachments": uploads} | fields
    response = await deploy.client(node).post(
        "/v1/alerts", json=body, headers=deploy.terminal(node) | idempotency()
    )
    assert response.status_code == 202, response.text
    return str(response.json()["alert_id"])


def file_arrived(deploy: Deployment, node: str, alert_id: str, index: int) -> Any:
    async def probe() -> Any:
        response = await deploy.client(node).get(
            f"/v1/alerts/{alert_id}/attachments/{index}", headers=deploy.analyst(node)
        )
        return response if response.status_code == 200 else None

    return probe


async def rows(deploy: Deployment, node: str, alert_id: str) -> list[AttachmentRow]:
    async with session_factory(deploy.runtimes[node].engine)() as session:
        return list(
            (
                await session.scalars(
                    select(AttachmentRow).where(
                        AttachmentRow.node_id == node, AttachmentRow.alert_id == alert_id
                    )
                )
            ).all()
        )


async def test_a_5mb_photo_reaches_the_partner_byte_identical_and_nobody_else(
    deploy: Deployment,
) -> None:
    kg = deploy.client(KG)
    status = await upload(kg, deploy.terminal(KG), PHOTO_5MB, keep_location=True)
    assert status["state"] == "ready"
    assert status["sha256"] == hashlib.sha256(PHOTO_5MB).hexdigest()  # kept as taken
    alert_id = await post_with(deploy, KG, [status["upload_id"]])

    response = await eventually(file_arrived(deploy, TJ, alert_id, 1), timeout=30, what="file")
    assert hashlib.sha256(response.content).hexdigest() == hashlib.sha256(PHOTO_5MB).hexdigest()
    assert response.headers["content-type"] == "image/jpeg"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert response.headers["x-content-type-options"] == "nosniff"
    item = await feed_has(deploy, TJ, alert_id)()
    assert item["attachments"][0]["sha256"] == status["sha256"]

    # The partner's database and the bucket hold the ciphertext the envelope names, not the photo.
    [row] = await rows(deploy, TJ, alert_id)
    assert row.state == "stored"
    assert row.ciphertext is not None
    assert row.size == len(PHOTO_5MB) + 16
    assert PHOTO_5MB[1000:1064] not in row.ciphertext
    bucket = AttachmentBucket(deploy.runtimes[TJ].bus)
    assert (await bucket.fetch(KG, row.sha256, row.size)).data == row.ciphertext

    # UZ is no recipient: no file, no list, nothing stored at its node.
    for path in (f"/v1/alerts/{alert_id}/attachments/1", f"/v1/alerts/{alert_id}/attachments"):
        denied = await deploy.client(UZ).get(path, headers=deploy.analyst(UZ))
        assert denied.status_code == 404, denied.text
        assert denied.headers["content-type"] == "application/problem+json"
    assert await rows(deploy, UZ, alert_id) == []
    # Nor is the upload usable twice, or by another terminal.
    again = await deploy.client(KG).post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE | {"attachments": [status["upload_id"]]},
        headers=deploy.terminal(KG) | idempotency(),
    )
    assert again.status_code == 422, again.text


async def test_a_passport_scan_never_reaches_an_agency_without_nominal_rights(
    deploy: Deployment,
) -> None:
    """TJ-UZ's agreement allows no personal data: UZ gets the photo, never the scan."""
    tj2, headers = deploy.client(TJ2), deploy.terminal(TJ2)
    case_photo = await upload(tj2, headers, photo(50_000, seed=1))
    scan = await upload(
        tj2, headers, pdf(), filename="passport.pdf", content_type="application/pdf", nominal=True
    )
    alert_id = await post_with(
        deploy,
        TJ2,
        [case_photo["upload_id"], scan["upload_id"]],
        border_pair="TJ-UZ",
        crossing_point="TJ-FOTEHOBOD",
    )
    await eventually(file_arrived(deploy, UZ, alert_id, 1), timeout=30, what="the photo at UZ")
    listing = await deploy.client(UZ).get(
        f"/v1/alerts/{alert_id}/attachments", headers=deploy.analyst(UZ)
    )
    assert [a["index"] for a in listing.json()["attachments"]] == [1]
    assert listing.json()["attachments"][0]["name"] == "photo.jpg"  # from the sealed card
    scan_at_uz = await deploy.client(UZ).get(
        f"/v1/alerts/{alert_id}/attachments/2", headers=deploy.analyst(UZ)
    )
    assert scan_at_uz.status_code == 404
    assert [r.part for r in await rows(deploy, UZ, alert_id)] == ["file-1"]  # never fetched
    # The origin agency reads both; the scan as it was sent, never rendered.
    own = await deploy.client(TJ2).get(
        f"/v1/alerts/{alert_id}/attachments/2", headers=deploy.analyst(TJ2)
    )
    assert own.status_code == 200
    assert hashlib.sha256(own.content).hexdigest() == scan["sha256"]
    assert own.headers["content-type"] == "application/pdf"


async def test_an_upload_cut_at_60_percent_resumes_and_completes(deploy: Deployment) -> None:
    kg, headers = deploy.client(KG), deploy.terminal(KG)
    data = photo(2 * 1024 * 1024, gps=True, seed=2)
    created = await create(kg, headers, data)
    upload_id = created.json()["upload_id"]
    cut = int(len(data) * 0.6)
    assert (await send_part(kg, headers, upload_id, 0, data[:cut])).status_code == 200
    # The link drops; the officer's phone does not know what arrived. It asks, and resumes.
    head = await kg.head(f"/v1/uploads/{upload_id}", headers=headers)
    assert head.status_code == 200
    assert int(head.headers["Upload-Offset"]) == cut
    # A part from the wrong place is refused, not written.
    wrong = await send_part(kg, headers, upload_id, 0, data[:100])
    assert wrong.status_code == 409
    assert wrong.headers["content-type"] == "application/problem+json"
    done = await send_part(kg, headers, upload_id, cut, data[cut:])
    assert done.status_code == 200, done.text
    status = done.json()
    assert status["state"] == "ready"
    # Location stripped (not kept on purpose), the rest of the photo's EXIF kept.
    alert_id = await post_with(deploy, KG, [upload_id])
    response = await eventually(file_arrived(deploy, TJ, alert_id, 1), timeout=30, what="file")
    assert hashlib.sha256(response.content).hexdigest() == status["sha256"]
    exif = Image.open(io.BytesIO(response.content)).getexif()
    assert 0x8825 not in exif
    assert exif[0x010F] == "Test camera"
    # Another terminal's upload id is unknown to this one.
    other = await deploy.client(TJ).head(f"/v1/uploads/{upload_id}", headers=deploy.terminal(TJ))
    assert other.status_code == 404


async def test_the_thumbnail_arrives_first_and_a_swapped_object_is_refused(
    deploy: Deployment,
) -> None:
    """KG's pushes are held back (a slow link): TJ shows each alert with its thumbnail at once.
    Before KG's files get through, whoever runs NATS puts another object of the same size
    under one of them: TJ refuses it (hash), records why, and serves the genuine other file."""
    origin = deploy.runtimes[KG].attachments.service
    origin.stop()
    kg, headers = deploy.client(KG), deploy.terminal(KG)
    genuine = await post_with(
        deploy, KG, [(await upload(kg, headers, photo(300_000, seed=3)))["upload_id"]]
    )
    swapped = await post_with(
        deploy, KG, [(await upload(kg, headers, photo(300_000, seed=4)))["upload_id"]]
    )

    item = await eventually(feed_has(deploy, TJ, genuine), what="the alert at TJ")
    assert item["attachments"][0]["thumbnail"] is True
    thumb = await deploy.client(TJ).get(
        f"/v1/alerts/{genuine}/attachments/1/thumbnail", headers=deploy.analyst(TJ)
    )
    assert thumb.status_code == 200
    assert Image.open(io.BytesIO(thumb.content)).size[0] <= 160
    pending = await deploy.client(TJ).get(
        f"/v1/alerts/{genuine}/attachments/1", headers=deploy.analyst(TJ)
    )
    assert pending.status_code == 409  # the file has not arrived: the thumbnail came first

    await eventually(feed_has(deploy, TJ, swapped), what="the second alert at TJ")
    [row] = await rows(deploy, TJ, swapped)
    forged = bytes(row.size)
    await deploy.runtimes[TJ].bus.js.publish(
        chunk_subject(KG, row.sha256), forged, headers={"Blo-Offset": "0"}
    )

    async def refused() -> Any:
        [now] = await rows(deploy, TJ, swapped)
        return now if now.state == "refused" else None

    assert (await eventually(refused, timeout=20, what="the refusal")).reason == "file_hash"
    assert await origin.push_pending() == 2  # the link is back: KG's two files go out
    await eventually(file_arrived(deploy, TJ, genuine, 1), timeout=30, what="the genuine file")
    still = await deploy.client(TJ).get(
        f"/v1/alerts/{swapped}/attachments/1", headers=deploy.analyst(TJ)
    )
    assert still.status_code == 409
    [row] = await rows(deploy, TJ, swapped)
    assert row.ciphertext is None


async def test_limits_are_problems(deploy: Deployment) -> None:
    kg, headers = deploy.client(KG), deploy.terminal(KG)
    too_big = await kg.post(
        "/v1/uploads",
        json={"length": 10**9, "filename": "a.jpg", "content_type": "image/jpeg"},
        headers=headers,
    )
    assert too_big.status_code == 413
    assert too_big.headers["content-type"] == "application/problem+json"
    wrong_type = await kg.post(
        "/v1/uploads",
        json={"length": 10, "filename": "a.exe", "content_type": "application/x-msdownload"},
        headers=headers,
    )
    assert wrong_type.status_code == 415
    # A PDF sent as a photo is found out by its bytes when complete.
    liar = pdf()
    created = await create(kg, headers, liar)
    done = await send_part(kg, headers, created.json()["upload_id"], 0, liar)
    assert done.status_code == 415, done.text
    # Analysts do not upload.
    analyst = await create(kg, deploy.analyst(KG), liar)
    assert analyst.status_code == 403


async def test_an_unsealed_upload_expires_from_postgres_and_the_disk(
    deploy: Deployment, tmp_path: Path
) -> None:
    runtime = deploy.runtimes[KG]
    spool_dir = tmp_path / "spool"
    uploads = UploadService(
        node=runtime.node,
        store=SqlUploadStore(session_factory(runtime.engine)),
        spool=FileSpool(spool_dir),
        limits=runtime.attachments.uploads.limits,
        clock=utc_now,
        ttl=timedelta(0),
    )
    terminal = await runtime.auth.authenticate(deploy.seed.terminal_tokens[KG], certificate=None)
    data = photo(20_000, seed=9)
    record = await uploads.create(
        terminal, length=len(data), filename="a.jpg", content_type="image/jpeg"
    )
    await uploads.append(terminal, record.id, 0, data)
    assert sorted(p.name for p in spool_dir.iterdir()) == [
        f"{record.id}.file",
        f"{record.id}.name",
        f"{record.id}.raw",
        f"{record.id}.thumb",
    ]
    assert oct(spool_dir.stat().st_mode & 0o777) == "0o700"
    assert await uploads.expire() >= 1
    assert list(spool_dir.iterdir()) == []
    assert (await uploads.status(terminal, record.id)).state == "expired"
