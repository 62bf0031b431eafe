"""The analyst's retention page without servers: an app over fakes, driven through httpx's ASGI
transport. The originator's analyst sees the task, keeps within the agreement (a signed record
goes out), is refused beyond it, lets one expire; a form without the CSRF token is refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from blo_exchange.bootstrap.app import create_app
from blo_exchange.config import Settings
from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.receipt import UnverifiedReceipt
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.retention import expiry_day
from blo_exchange.services.auth import Authenticator, hash_token
from blo_exchange.services.ports import Directory
from blo_exchange.services.receipts import ReceiptPublisher
from blo_exchange.services.registry import Services
from blo_exchange.services.retention import RetainedNominal
from blo_exchange.services.retention_review import RetentionReviews
from blo_exchange.services.signed import SignedMessages
from tests.unit.services.fakes import FakePublisher
from tests.unit.services.retention_fakes import FakeKeys, FakeStore

NODE = DEMO_NODES[0]  # KG's
TOKEN = "blo_analyst-token"
NOW = datetime(2027, 1, 1, 9, tzinfo=UTC)
CREATED = NOW - timedelta(days=20)
ALERT = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"


class FakeDirectory:
    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        if token_hash != hash_token(TOKEN):
            return None
        return Principal(
            id="an1",
            role=Role.ANALYST,
            agency_id=NODE.agency_id,
            label="analyst",
            created_at=datetime(2026, 1, 1, tzinfo=UTC),
        )


@pytest.fixture
def store() -> FakeStore:
    row = RetainedNominal(
        node_id=NODE.id,
        alert_id=ALERT,
        role="origin",
        agency_id=NODE.agency_id,
        origin_agency=NODE.agency_id,
        border_pair="KG-TJ",
        kind="seizure",
        agreement_id="mou-kg-tj-2026",
        agreement_ids=("mou-kg-tj-2026",),
        envelope_sha256="0" * 64,
        created_at=CREATED,
        expires_at=expiry_day(CREATED, 30),
        max_until=expiry_day(CREATED, 90),
    )
    return FakeStore(rows={(NODE.id, ALERT): row})


@pytest.fixture
def published() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def client(store: FakeStore, published: FakePublisher) -> AsyncIterator[httpx.AsyncClient]:
    directory = FakeDirectory()
    services = Services()
    services.add(Node, NODE)
    services.add(Directory, directory)  # type: ignore[type-abstract]
    services.add(Authenticator, Authenticator(directory=directory, clock=lambda: NOW))  # type: ignore[arg-type]
    services.add(
        RetentionReviews,
        RetentionReviews(
            node=NODE,
            store=store,
            keys=FakeKeys(),
            receipts=ReceiptPublisher(
                node=NODE, signer=SigningKey.generate(), publisher=published, clock=lambda: NOW
            ),
            signed=SignedMessages(directory, clock=lambda: NOW),  # type: ignore[arg-type]
            clock=lambda: NOW,
        ),
    )
    app = create_app(Settings(node_id=NODE.id), services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://node.test") as c:
        form = await c.get("/sign-in")
        await c.post("/sign-in", data={"token": TOKEN, "csrf": csrf_of(form.text)})
        yield c


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


async def test_the_task_is_shown_and_kept_within_the_agreement(
    client: httpx.AsyncClient, store: FakeStore, published: FakePublisher
) -> None:
    page = await client.get("/analyst/retention")
    assert page.status_code == 200
    assert ALERT in page.text
    assert "mou-kg-tj-2026" in page.text
    csrf = csrf_of(page.text)
    too_far = (CREATED + timedelta(days=95)).date().isoformat()
    refused = await client.post(
        f"/analyst/retention/{ALERT}",
        data={"csrf": csrf, "decision": "keep", "until": too_far, "reason": "court"},
    )
    assert refused.status_code == 422
    assert "does not allow keeping it that long" in refused.text
    assert published.published == []
    until = (CREATED + timedelta(days=60)).date()
    kept = await client.post(
        f"/analyst/retention/{ALERT}",
        data={"csrf": csrf, "decision": "keep", "until": until.isoformat(), "reason": "court"},
    )
    assert kept.status_code == 303
    body = UnverifiedReceipt.parse(published.published[0][1]).body
    assert body["type"] == "nominal_retention_extended"
    assert body["detail"]["reason"] == "court"
    assert store.rows[(NODE.id, ALERT)].decision == "kept"
    shown = await client.get(kept.headers["location"])
    assert "Every partner node has been told" in shown.text


async def test_let_expire_and_csrf(client: httpx.AsyncClient, store: FakeStore) -> None:
    page = await client.get("/analyst/retention", headers={"Accept-Language": "ru"})
    assert "Персональные данные к удалению" in page.text
    no_csrf = await client.post(f"/analyst/retention/{ALERT}", data={"decision": "expire"})
    assert no_csrf.status_code == 403
    assert store.rows[(NODE.id, ALERT)].decision is None
    expired = await client.post(
        f"/analyst/retention/{ALERT}", data={"csrf": csrf_of(page.text), "decision": "expire"}
    )
    assert expired.status_code == 303
    assert store.rows[(NODE.id, ALERT)].decision == "expire"
    unknown = await client.post(
        "/analyst/retention/0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c",
        data={"csrf": csrf_of(page.text), "decision": "expire"},
    )
    assert unknown.status_code == 404
