"""Seizure statistics on real servers: KG and TJ terminals post seizures, and each agency's
analyst reads its own totals and CSV through the API; other roles get a problem+json 403."""

from __future__ import annotations

import copy
import csv
import io
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from blo_exchange.domain.examples import EXAMPLE_SEIZURE
from tests.integration.pipeline import Deployment, deployment, eventually, feed_has

KG, TJ, TJ2, UZ = "blo-karamyk-kg", "blo-karamyk-tj", "blo-fotehobod-tj", "blo-oybek-uz"


@pytest.fixture
async def deploy(database_url: str, nats_url: str, tmp_path: Path) -> AsyncIterator[Deployment]:
    async with deployment(database_url, nats_url, tmp_path / "keys") as d:
        yield d


def seizure(
    crossing: str, pair: str, observed_at: str, items: list[tuple[str, str, str]]
) -> dict[str, Any]:
    body = copy.deepcopy(EXAMPLE_SEIZURE)  # it carries a nominal block: "Example Driver"
    body["crossing_point"], body["border_pair"] = crossing, pair
    body["case"]["observed_at"] = observed_at
    body["case"]["items"] = [
        {"substance": s, "form": "powder", "quantity": q, "unit": u} for s, q, u in items
    ]
    if pair == "TJ-UZ":  # that agreement carries no personal data, and only up to AMBER
        del body["nominal"]
    return body


async def post(deploy: Deployment, node: str, body: dict[str, Any]) -> str:
    response = await deploy.client(node).post(
        "/v1/alerts",
        json=body,
        headers=deploy.terminal(node) | {"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.text
    alert_id: str = response.json()["alert_id"]
    return alert_id


async def test_analysts_read_their_agencys_statistics(deploy: Deployment) -> None:
    kg = [
        seizure("KG-KARAMYK", "KG-TJ", "2026-10-03T05:00:00Z", [("heroin", "12.5", "kg")]),
        seizure(
            "KG-KARAMYK",
            "KG-TJ",
            "2026-11-20T05:00:00Z",
            [("heroin", "500", "g"), ("hashish", "2", "kg")],
        ),
    ]
    tj2 = [seizure("TJ-FOTEHOBOD", "TJ-UZ", "2026-11-21T05:00:00Z", [("opium", "250", "ml")])]
    kg_ids = [await post(deploy, KG, body) for body in kg]
    tj2_ids = [await post(deploy, TJ2, body) for body in tj2]
    for alert_id in kg_ids:
        await eventually(feed_has(deploy, TJ, alert_id), what="the KG seizures at TJ")
    for alert_id in tj2_ids:
        await eventually(feed_has(deploy, UZ, alert_id), what="the TJ seizure at UZ")

    response = await deploy.client(TJ).get("/v1/statistics", headers=deploy.analyst(TJ))
    assert response.status_code == 200, response.text
    stats = response.json()
    assert (stats["seizures"], stats["lines"]) == (2, 3)
    assert stats["by_crossing_point"] == {
        "KG-KARAMYK": {"seizures": 2, "lines": 3, "quantities": {"kg": "15"}}
    }
    assert stats["by_substance"] == {
        "heroin": {"seizures": 2, "lines": 2, "quantities": {"kg": "13"}},
        "hashish": {"seizures": 1, "lines": 1, "quantities": {"kg": "2"}},
    }
    assert list(stats["by_month"]) == ["2026-10", "2026-11"]
    assert stats["by_month"]["2026-11"] == {"seizures": 1, "lines": 2, "quantities": {"kg": "2.5"}}

    uz = (await deploy.client(UZ).get("/v1/statistics", headers=deploy.analyst(UZ))).json()
    assert uz["by_crossing_point"] == {
        "TJ-FOTEHOBOD": {"seizures": 1, "lines": 1, "quantities": {"l": "0.25"}}
    }

    exported = await deploy.client(TJ).get("/v1/statistics.csv", headers=deploy.analyst(TJ))
    assert exported.status_code == 200
    assert exported.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert sorted((r["reference"], r["drug"], r["amount_normalised"]) for r in rows) == sorted(
        [
            (kg_ids[0], "heroin", "12.5"),
            (kg_ids[1], "heroin", "0.5"),
            (kg_ids[1], "hashish", "2"),
        ]
    )
    assert {r["country_of_seizure"] for r in rows} == {"KG"}
    assert "Example Driver" not in exported.text  # the TJ analyst could read it in the feed
    assert "0417TJ02" not in exported.text


@pytest.mark.parametrize("path", ["/v1/statistics", "/v1/statistics.csv"])
async def test_statistics_are_for_analysts_only(deploy: Deployment, path: str) -> None:
    for headers in (deploy.terminal(KG), deploy.auditor):
        refused = await deploy.client(KG).get(path, headers=headers)
        assert refused.status_code == 403, refused.text
        assert refused.headers["content-type"] == "application/problem+json"
    anonymous = await deploy.client(KG).get(path)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"


async def test_statistics_page_in_every_language(deploy: Deployment) -> None:
    """The analyst's page draws the same totals as the API, in each language, with the CSV."""
    alert_id = await post(
        deploy,
        KG,
        seizure(
            "KG-KARAMYK",
            "KG-TJ",
            "2026-11-20T05:00:00Z",
            [("heroin", "1500", "g"), ("methamphetamine", "1200", "tablet")],
        ),
    )
    await eventually(feed_has(deploy, TJ, alert_id), what="the KG seizure at TJ")
    client = httpx.AsyncClient(
        transport=deploy.client(TJ)._transport, base_url=f"https://{TJ}.test"
    )
    async with client:
        await sign_in(client, deploy.seed.analyst_tokens[TJ])
        expected = {
            "en": ("Seizure statistics", "1.5 kg", "November 2026", "1,200"),
            "ru": ("Статистика изъятий", "1,5 кг", "ноябрь 2026", "1 200"),
            "tg": ("Омори мусодираҳо", "1,5 кг", "Ноябр 2026", "1 200"),
            "uz-Latn": ("Musodaralar statistikasi", "1,5 kg", "Noyabr 2026", "1 200"),
            "uz-Cyrl": ("Мусодаралар статистикаси", "1,5 кг", "ноябр 2026", "1 200"),
            "ky": ("Алып коюулардын статистикасы", "1,5 кг", "Ноябрь 2026", "1 200"),
        }
        for lang, (title, kilos, month, tablets) in expected.items():
            page = await client.get("/analyst/statistics", params={"lang": lang})
            assert page.status_code == 200, page.text
            text = page.text.replace("\xa0", " ").replace("\u202f", " ")
            assert f"<h1>{title}</h1>" in text, lang
            for shown in (kilos, month, tablets):
                assert shown in text, (lang, shown)
            assert text.count('<g class="bar">') == 1 + 2 + 1  # crossings, substances, months
            assert 'data-crossing="KG-KARAMYK"' in text
            assert "Example Driver" not in text
        exported = await client.get("/analyst/statistics.csv")
        assert exported.status_code == 200
        assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 2
        assert "Example Driver" not in exported.text


def hidden(page: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', page)
    assert match, f"no hidden field {name}"
    return match.group(1)


async def sign_in(client: httpx.AsyncClient, token: str) -> None:
    form = await client.get("/sign-in")
    response = await client.post(
        "/sign-in", data={"token": token, "csrf": hidden(form.text, "csrf"), "next": ""}
    )
    assert response.status_code == 303, response.text
