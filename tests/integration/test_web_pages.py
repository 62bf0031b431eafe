"""The web pages on a real in-process deployment, through httpx (no browser): sign-in, the
officer's form, the analyst's alert page and receipts, the auditor's ledger, sizes and CSRF."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from tests.integration.pipeline import Deployment, deployment, eventually, ledger_has
from tests.integration.web_client import hidden, sign_in

KG, TJ = "blo-karamyk-kg", "blo-karamyk-tj"
MAX_PAGE = 200 * 1024


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


def seizure_form(csrf: str) -> dict[str, str]:
    case = EXAMPLE_SEIZURE["case"]
    item = case["items"][0]
    return {
        "csrf": csrf,
        "idempotency_key": "web-test-0001",
        "tz_offset": "-360",  # Bishkek, UTC+6
        "kind": "seizure",
        "crossing_point": "KG-KARAMYK",
        "border_pair": "KG-TJ",
        "tlp": "AMBER",
        "handling.scheme": "europol",
        "handling.code": "H1",
        "grading.scheme": "admiralty",
        "grading.source": "B",
        "grading.information": "2",
        "seizure.case.observed_at": "2026-01-05T12:40",
        "seizure.case.items.0.substance": item["substance"],
        "seizure.case.items.0.form": item["form"],
        "seizure.case.items.0.quantity": item["quantity"],
        "seizure.case.items.0.unit": item["unit"],
        "seizure.case.items.0.package_count": "25",
        "seizure.case.detection_method": "risk_profile",
        "seizure.case.concealment.method": "fuel_tank",
        "seizure.case.concealment.place": "second fuel tank",
        "seizure.case.narrative.lang": "en",
        "risk.case.subject": "ignored: another kind",
        "nominal.persons.0.role": "driver",
        "nominal.persons.0.name": "Example Driver",
    }


async def test_officer_files_analyst_acknowledges_auditor_sees(deploy: Deployment) -> None:
    officer, analyst, auditor = (
        httpx.AsyncClient(transport=deploy.client(n)._transport, base_url=f"https://{n}.test")
        for n in (KG, TJ, KG)
    )
    async with officer, analyst, auditor:
        csrf = await sign_in(officer, deploy.seed.terminal_tokens[KG])

        # A field-level error: the quantity is no number; nothing is sent.
        bad = seizure_form(csrf) | {"seizure.case.items.0.quantity": "12,5,0"}
        refused = await officer.post("/officer/alerts", data=bad)
        assert refused.status_code == 422
        assert 'id="f-seizure-case-items-0-quantity-error"' in refused.text
        assert 'aria-invalid="true"' in refused.text
        assert "for example 12.5 or 12,5" in refused.text

        # An empty form: every link of the error summary lands on a field of the page.
        empty = {k: "" for k in seizure_form(csrf)} | {
            "csrf": csrf,
            "idempotency_key": "web-test-empty",
            "kind": "seizure",
            "tz_offset": "-360",
            "tlp": "AMBER",
            "handling.scheme": "none",
            "seizure.case.observed_at": "2026-01-05T12:40",  # the page fills it in
        }
        refused = await officer.post("/officer/alerts", data=empty)
        assert refused.status_code == 422
        summary = refused.text.split('id="error-summary"')[1].split("</div>")[0]
        targets = re.findall(r'href="#([^"]+)"', summary)
        assert "f-seizure-case-items-0-quantity" in targets
        for target in targets:
            assert f'id="{target}"' in refused.text.split("</div>", 1)[1], target
        assert 'id="f-seizure-case-items-0-substance-error"' in refused.text

        # A decimal comma, as officers write it in Russian, is sent as the API's "12.5".
        comma = seizure_form(csrf) | {"seizure.case.items.0.quantity": "12,5"}
        sent = await officer.post("/officer/alerts", data=comma)
        assert sent.status_code == 201, sent.text
        alert_id = re.search(r'id="sent-alert-id">([0-9a-f-]{36})<', sent.text)
        assert alert_id, sent.text
        alert_id_text = alert_id.group(1)
        assert "tj-drug-control-agency" in sent.text

        # The TJ analyst opens it (it arrives through NATS) and acknowledges.
        a_csrf = await sign_in(analyst, deploy.seed.analyst_tokens[TJ])

        async def alert_page() -> httpx.Response | None:
            page = await analyst.get(f"/analyst/alerts/{alert_id_text}")
            return page if page.status_code == 200 else None

        page = await eventually(alert_page, what="the alert page at TJ")
        assert "<td>12.5 " in page.text  # the comma came through as the dot
        assert "TLP:AMBER" in page.text
        assert "tlp-banner tlp-amber" in page.text
        assert "Usually reliable" in page.text
        assert "Probably true" in page.text
        assert "Example Driver" in page.text  # the nominal block, allowed by the KG-TJ MoU
        assert len(page.content) < MAX_PAGE
        ack = await analyst.post(f"/analyst/alerts/{alert_id_text}/receipts", data={"csrf": a_csrf})
        assert ack.status_code == 303
        feedback = await analyst.post(
            f"/analyst/alerts/{alert_id_text}/receipts",
            data={"csrf": a_csrf, "outcome": "seized"},
        )
        assert feedback.status_code == 303

        # The officer's table and the auditor's ledger show share, delivery, acknowledgement.
        async def officer_sees_feedback() -> str | None:
            table = await officer.get(f"/officer/sent/table?alert={alert_id_text}")
            return table.text if 'data-state="feedback"' in table.text else None

        table = await eventually(officer_sees_feedback, what="feedback in the officer's table")
        listed = await officer.get("/officer/sent")
        assert f'data-alert="{alert_id_text}"' in listed.text
        assert 'data-agency="tj-drug-control-agency" data-state="feedback"' in table

        await sign_in(auditor, deploy.seed.auditor_token)
        kinds = ("alert_shared", "alert_delivered", "alert_acknowledged", "feedback")

        # Each receipt reaches the ledger on its own: the feedback may be in before the delivery.
        async def auditor_sees_all() -> Any:
            page = await auditor.get("/auditor", params={"alert_id": alert_id_text})
            assert page.status_code == 200
            return page if all(f'data-type="{k}"' in page.text for k in kinds) else None

        ledger = await eventually(auditor_sees_all, what="the four entries on the auditor's page")
        assert 'data-origin="kg-border-service" data-recipient="tj-drug-control-agency">1<' in (
            ledger.text
        )
        assert len(ledger.content) < MAX_PAGE

        ru = await auditor.get("/auditor", headers={"Accept-Language": "ru"})
        assert '<html lang="ru">' in ru.text
        assert "Журнал" in ru.text

        # Reading the ledger through the pages is recorded like reading it through the API.
        async def page_reads() -> Any:
            entries = await ledger_has(deploy, KG, type="ledger_queried")()
            reads = [e for e in entries if e["detail"].get("path") == "/auditor"]
            return reads if len(reads) >= 2 else None

        reads = await eventually(page_reads, what="the auditor's page reads in the ledger")
        assert len({r["detail"]["principal"] for r in reads}) == 1
        assert all(r["detail"]["principal"].startswith("auditor-") for r in reads)

        for client, path in ((officer, "/officer"), (analyst, "/analyst")):
            response = await client.get(path)
            assert response.status_code == 200
            assert len(response.content) < MAX_PAGE


async def test_cookie_flags_csrf_and_roles(deploy: Deployment) -> None:
    transport = deploy.client(KG)._transport
    async with httpx.AsyncClient(transport=transport, base_url="https://kg.test") as tls:
        form = await tls.get("/sign-in")
        response = await tls.post(
            "/sign-in",
            data={"token": deploy.seed.terminal_tokens[KG], "csrf": hidden(form.text, "csrf")},
        )
        assert response.status_code == 303
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("blo_session=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")}
        assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
        # Without the form's CSRF token, state-changing posts are refused.
        refused = await tls.post("/officer/alerts", data={"kind": "seizure"})
        assert refused.status_code == 403
        assert (await tls.post("/sign-out", data={})).status_code == 403
        # An officer is not an auditor.
        assert (await tls.get("/auditor")).status_code == 403
    async with httpx.AsyncClient(transport=transport, base_url="http://kg.test") as plain:
        form = await plain.get("/sign-in")
        response = await plain.post(
            "/sign-in",
            data={"token": deploy.seed.analyst_tokens[KG], "csrf": hidden(form.text, "csrf")},
        )
        cookie = next(
            c for c in response.headers.get_list("set-cookie") if c.startswith("blo_session=")
        )
        assert "secure" not in cookie.lower()
        # The session cookie is no bearer token for the JSON API.
        assert (await plain.get("/v1/feed")).status_code == 401
