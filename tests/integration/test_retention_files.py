"""Nominal attachments under the personal-data lifecycle, on real servers and a fake clock
(docs/retention.md, "Nominal files").

KG sends TJ an alert with a passport scan (a nominal file, with a thumbnail) and a photo (a case
file). Before the retention ends TJ's analyst downloads both, and TJ's database opens the scan
only with the day's epoch key. When the retention ends and TJ sweeps, the scan no longer opens
at TJ: not through the API (410 for the file and its thumbnail), not from the stored envelope
with TJ's agency key (its card, which holds the thumbnail, is in no row), not from
``node_attachments`` (its rows are gone); the photo still downloads byte-identical, and the
ledger holds TJ's ``nominal_erased`` receipt.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from blo_exchange.crypto.envelope import UnverifiedEnvelope
from blo_exchange.crypto.retention import open_nominal
from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from blo_exchange.domain.ids import parse_time
from blo_exchange.errors import InvalidEnvelope
from tests.integration.attachment_helpers import idempotency, photo, upload
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has, ledger_has
from tests.integration.test_attachments import file_arrived, rows
from tests.integration.test_retention import KG, TJ, TJ_AGENCY, FakeClock
from tests.integration.test_web_pages import sign_in

UZ = "blo-oybek-uz"
SCAN = photo(40_000, seed=11)  # a phone photo of a passport page: it gets a thumbnail
PHOTO = photo(60_000, seed=12)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC))


@pytest.fixture
async def deploy(
    database_url: str, nats_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys", retention_clock=clock) as d:
        yield d


async def get(deploy: Deployment, path: str) -> tuple[int, bytes, str]:
    response = await deploy.client(TJ).get(path, headers=deploy.analyst(TJ))
    return response.status_code, response.content, response.headers.get("content-type", "")


async def test_a_nominal_files_key_is_erased_with_the_nominal_block_and_the_case_file_stays(
    deploy: Deployment, clock: FakeClock
) -> None:
    kg, headers = deploy.client(KG), deploy.terminal(KG)
    case_photo = await upload(kg, headers, PHOTO)
    scan = await upload(kg, headers, SCAN, filename="passport.jpg", nominal=True)
    response = await kg.post(
        "/v1/alerts",
        json=EXAMPLE_SEIZURE | {"attachments": [case_photo["upload_id"], scan["upload_id"]]},
        headers=headers | idempotency(),
    )
    assert response.status_code == 202, response.text
    alert_id = response.json()["alert_id"]
    created = parse_time(response.json()["created_at"])
    base = f"/v1/alerts/{alert_id}/attachments"

    # Before the end: TJ's analyst opens both files and the scan's thumbnail.
    await eventually(file_arrived(deploy, TJ, alert_id, 2), timeout=30, what="the scan at TJ")
    await eventually(file_arrived(deploy, TJ, alert_id, 1), timeout=30, what="the photo at TJ")
    status, body, _ = await get(deploy, f"{base}/2")
    assert status == 200
    assert hashlib.sha256(body).hexdigest() == scan["sha256"]
    status, thumb, kind = await get(deploy, f"{base}/2/thumbnail")
    assert (status, kind) == (200, "image/jpeg")
    assert thumb.startswith(b"\xff\xd8")
    status, photo_before, _ = await get(deploy, f"{base}/1")
    assert status == 200
    assert hashlib.sha256(photo_before).hexdigest() == case_photo["sha256"]
    item = await feed_has(deploy, TJ, alert_id)()
    assert [a["name"] for a in item["attachments"]] == ["photo.jpg", "passport.jpg"]

    # The row TJ stored holds no card of the scan: its agency key opens the case and the photo's.
    tj = deploy.runtimes[TJ]
    stored = await tj.inbox.get(TJ, alert_id)
    assert stored is not None
    keys = await tj.directory.verify_keys("node", KG, created)
    verified = UnverifiedEnvelope.parse(stored.envelope).verify_signature_only(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure"
    )
    assert set(verified.redacted_parts) == {"nominal", "file-2"}
    assert set(verified.open(TJ_AGENCY, tj.keys.kem).parts) == {"case", "file-1"}
    assert tj.retention is not None
    vault = await tj.retention.sweeper._store.get(TJ, alert_id)
    assert vault is not None
    assert vault.sealed is not None
    # In node_attachments (a backup of it), the agency key opens the photo but not the scan:
    # its ciphertext is kept sealed under the vault's data key, which the epoch key wraps.
    opened = verified.open(TJ_AGENCY, tj.keys.kem)
    by_part = {r.part: r for r in await rows(deploy, TJ, alert_id)}
    assert by_part["file-2"].nominal
    from_db = opened.open_file("file-1", by_part["file-1"].ciphertext or b"")
    assert hashlib.sha256(from_db).hexdigest() == case_photo["sha256"]
    with pytest.raises(InvalidEnvelope):
        opened.open_file("file-2", by_part["file-2"].ciphertext or b"")

    # The retention ends (30 days, rounded down to the day); TJ sweeps.
    expires = datetime.combine((created + timedelta(days=30)).date(), datetime.min.time(), UTC)
    clock.now = expires + timedelta(minutes=1)
    assert await tj.retention.sweeper.sweep() == 1

    # The scan is gone: 410 with a problem for the file and its thumbnail, never its bytes.
    for path in (f"{base}/2", f"{base}/2/thumbnail"):
        status, body, kind = await get(deploy, path)
        assert status == 410, body
        assert kind == "application/problem+json"
        assert SCAN[:64] not in body
        assert thumb not in body
    listing = (await deploy.client(TJ).get(base, headers=deploy.analyst(TJ))).json()
    assert [(a["index"], a["state"]) for a in listing["attachments"]] == [
        (1, "stored"),
        (2, "erased"),
    ]
    assert listing["attachments"][1]["name"] is None  # the card (name, thumbnail) is gone
    # Nor from node_attachments: the scan's rows are deleted, the photo's kept.
    assert [(r.part, r.nominal) for r in await rows(deploy, TJ, alert_id)] == [("file-1", False)]
    # Nor from the stored envelope with the agency key, nor from the old vault row.
    stored = await tj.inbox.get(TJ, alert_id)
    assert stored is not None
    reopened = UnverifiedEnvelope.parse(stored.envelope).verify_signature_only(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure"
    )
    assert "file-2" not in reopened.open(TJ_AGENCY, tj.keys.kem).parts
    with pytest.raises(InvalidEnvelope):
        open_nominal(vault.sealed, None, alert_id=alert_id)
    # The analyst's page says so, and its file route answers the same 410; a non-recipient
    # still gets 404 (not 410: nothing about the alert is its to know).
    page = httpx.AsyncClient(transport=deploy.client(TJ)._transport, base_url=f"https://{TJ}.test")
    async with page:
        await sign_in(page, deploy.seed.analyst_tokens[TJ])
        html = (await page.get(f"/analyst/alerts/{alert_id}")).text
        assert 'id="attachment-2" data-state="erased"' in html
        assert f"/files/{alert_id}/2/thumbnail" not in html
        assert f"/files/{alert_id}/1/thumbnail" in html
        for path in (f"/files/{alert_id}/2", f"/files/{alert_id}/2/thumbnail"):
            erased_page = await page.get(path)
            assert erased_page.status_code == 410
            assert SCAN[:64] not in erased_page.content
    outsider = await deploy.client(UZ).get(f"{base}/2", headers=deploy.analyst(UZ))
    assert outsider.status_code == 404

    # The photo still downloads byte-identical.
    status, photo_after, _ = await get(deploy, f"{base}/1")
    assert status == 200
    assert photo_after == photo_before

    # The ledger holds TJ's nominal_erased receipt.
    receipts = await eventually(
        ledger_has(deploy, KG, alert_id=alert_id, type="nominal_erased"), what="the receipt"
    )
    assert [(e["actor_node"], e["actor_agency"]) for e in receipts] == [(TJ, TJ_AGENCY)]

    # The originator keeps its own copy (its own data, its own rules).
    own = await kg.get(f"{base}/2", headers=deploy.analyst(KG))
    assert own.status_code == 200
    assert hashlib.sha256(own.content).hexdigest() == scan["sha256"]
