"""The pages without servers: an app over a fake runtime (a directory of three principals),
driven through httpx's ASGI transport. Sign-in, cookies, CSRF, roles, sizes, CSP-safe markup."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from blo_exchange.bootstrap.app import create_app
from blo_exchange.config import Settings
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.domain.directory import Node, Principal, Role
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.auth import Authenticator, hash_token
from blo_exchange.services.ports import Directory
from blo_exchange.services.registry import Services
from blo_exchange.web.pages_officer import FORM_FIELDS, ITEM_FIELDS, SentCache

WEB = Path(__file__).resolve().parents[3] / "src" / "blo_exchange" / "web"
NODE = DEMO_NODES[0]
TOKENS = {Role.TERMINAL: "blo_terminal-token", Role.AUDITOR: "blo_auditor-token"}
MAX_PAGE = 200 * 1024


class FakeDirectory:
    def __init__(self) -> None:
        created = datetime(2026, 1, 1, tzinfo=UTC)
        self.principals = {
            hash_token(TOKENS[Role.TERMINAL]): Principal(
                id="t1",
                role=Role.TERMINAL,
                node_id=NODE.id,
                agency_id=NODE.agency_id,
                label="post 1",
                created_at=created,
            ),
            hash_token(TOKENS[Role.AUDITOR]): Principal(
                id="a1", role=Role.AUDITOR, label="auditor", created_at=created
            ),
        }

    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return self.principals.get(token_hash)


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    directory = FakeDirectory()
    services = Services()
    services.add(Node, NODE)
    services.add(Directory, directory)  # type: ignore[type-abstract]
    services.add(Authenticator, Authenticator(directory=directory, clock=utc_now))  # type: ignore[arg-type]
    app = create_app(Settings(node_id=NODE.id), services=services)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://node.test") as c:
        yield c


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match
    return match.group(1)


async def test_start_page_sends_strangers_to_sign_in(client: httpx.AsyncClient) -> None:
    response = await client.get("/")
    assert response.status_code == 303
    assert response.headers["location"] == "/sign-in"
    protected = await client.get("/officer")
    assert protected.status_code == 303
    assert protected.headers["location"] == "/sign-in?next=%2Fofficer"


async def test_sign_in_sets_a_strict_httponly_secure_session(client: httpx.AsyncClient) -> None:
    form = await client.get("/sign-in")
    assert form.status_code == 200
    assert len(form.content) < MAX_PAGE
    assert "default-src 'self'" in form.headers["content-security-policy"]
    response = await client.post(
        "/sign-in",
        data={"token": TOKENS[Role.TERMINAL], "csrf": csrf_of(form.text), "next": "/officer"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/officer"
    cookies = response.headers.get_list("set-cookie")
    session = next(c for c in cookies if c.startswith("blo_session="))
    flags = {p.strip().lower() for p in session.split(";")[1:]}
    assert {"httponly", "secure", "samesite=strict", "path=/"} <= flags
    assert TOKENS[Role.TERMINAL] not in " ".join(cookies)  # the cookie is no credential copy
    # Signed in: the start page now leads to the officer's page; the auditor's is refused.
    assert (await client.get("/")).headers["location"] == "/officer"
    assert (await client.get("/auditor")).status_code == 403


async def test_sign_in_without_csrf_token_is_refused(client: httpx.AsyncClient) -> None:
    await client.get("/sign-in")  # sets the double-submit cookie
    response = await client.post("/sign-in", data={"token": TOKENS[Role.TERMINAL]})
    assert response.status_code == 403
    assert "blo_session=" not in " ".join(response.headers.get_list("set-cookie"))


async def test_wrong_token_gets_one_answer(client: httpx.AsyncClient) -> None:
    for token in ("blo_nobody", "not-even-a-token", ""):
        form = await client.get("/sign-in")
        response = await client.post("/sign-in", data={"token": token, "csrf": csrf_of(form.text)})
        assert response.status_code == 401
        assert "That token was not accepted" in response.text


async def test_state_changing_posts_need_the_session_csrf_token(
    client: httpx.AsyncClient,
) -> None:
    form = await client.get("/sign-in")
    await client.post("/sign-in", data={"token": TOKENS[Role.TERMINAL], "csrf": csrf_of(form.text)})
    for path in ("/officer/alerts", "/sign-out"):
        refused = await client.post(path, data={"csrf": "forged"})
        assert refused.status_code == 403, path
        assert (await client.post(path, data={})).status_code == 403, path


async def test_sign_out_ends_the_session(client: httpx.AsyncClient) -> None:
    form = await client.get("/sign-in")
    signed_in = await client.post(
        "/sign-in", data={"token": TOKENS[Role.AUDITOR], "csrf": csrf_of(form.text)}
    )
    old_cookie = signed_in.cookies["blo_session"]
    home = await client.get("/sign-in")  # any page carries the sign-out form's token
    assert home.status_code == 200
    page = await client.get("/admin")  # an auditor is not an admin: 403 page, with the form
    response = await client.post("/sign-out", data={"csrf": csrf_of(page.text)})
    assert response.status_code == 303
    client.cookies.set("blo_session", old_cookie)
    assert (await client.get("/auditor")).status_code == 303  # back to sign-in


async def test_language_from_header_cookie_and_switch(client: httpx.AsyncClient) -> None:
    ru = await client.get("/sign-in", headers={"Accept-Language": "ru-RU,ru;q=0.9,en;q=0.5"})
    assert '<html lang="ru">' in ru.text
    assert "Вход" in ru.text
    switched = await client.get("/language", params={"lang": "en", "next": "//evil.example"})
    assert switched.status_code == 303
    assert switched.headers["location"] == "/"
    en = await client.get("/sign-in", headers={"Accept-Language": "ru"})
    assert '<html lang="en">' in en.text  # the cookie wins over the header


async def test_static_files_are_served(client: httpx.AsyncClient) -> None:
    for name in ("app.css", "common.js", "officer.js", "feed.js", "ledger.js", "favicon.svg"):
        response = await client.get(f"/static/{name}")
        assert response.status_code == 200, name


def test_markup_has_no_inline_script_or_style_and_no_external_urls() -> None:
    """The CSP (default-src 'self') would block them; keep them out of the templates."""
    for path in sorted((WEB / "templates").glob("*.html")):
        text = path.read_text()
        for script in re.findall(r"<script[^>]*>", text):
            assert "src=" in script or 'type="application/json"' in script, path.name
        assert not re.search(r"\sstyle=", text), path.name
        assert not re.search(r"\son[a-z]+=", text), path.name
    for path in sorted(WEB.rglob("*")):
        if path.suffix in {".html", ".js", ".css"}:
            assert not re.search(r"(src|href)=\"https?://", path.read_text()), path.name
            assert "url(http" not in path.read_text(), path.name


async def test_static_files_are_cached_by_hash_and_compressed(client: httpx.AsyncClient) -> None:
    page = await client.get("/sign-in", headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip"
    assert page.headers["cache-control"] == "no-store"  # pages: never cached
    css = re.search(r'href="(/static/app\.[0-9a-f]{8}\.css)"', page.text)
    assert css, "the stylesheet is linked by its hashed name"
    hashed = await client.get(css.group(1), headers={"Accept-Encoding": "gzip"})
    assert hashed.status_code == 200
    assert hashed.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert hashed.headers["content-encoding"] == "gzip"
    assert hashed.content == (WEB / "static" / "app.css").read_bytes()
    # An older page's name (stale hash) or the plain name still works, but is revalidated.
    for name in ("/static/app.00000000.css", "/static/app.css"):
        response = await client.get(name)
        assert response.status_code == 200, name
        assert response.headers["cache-control"] == "no-cache", name
    assert (await client.get("/static/nothing.00000000.css")).status_code == 404


async def test_every_field_the_error_summary_can_name_is_on_the_form(
    client: httpx.AsyncClient,
) -> None:
    """``FORM_FIELDS`` (where summary links may land) and the template must not drift apart."""
    form = await client.get("/sign-in")
    await client.post("/sign-in", data={"token": TOKENS[Role.TERMINAL], "csrf": csrf_of(form.text)})
    page = (await client.get("/officer")).text
    names = set(re.findall(r'\sname="([^"]+)"', page))
    expected = set(FORM_FIELDS) | {f"seizure.case.items.0.{f}" for f in ITEM_FIELDS}
    assert expected <= names, expected - names
    for name in expected:
        assert f'id="f-{name.replace(".", "-")}"' in page, name
    for group in ("f-kind-seizure", "f-tlp-1", "alert-form"):
        assert f'id="{group}"' in page


def test_the_sent_list_is_read_once_per_ledger_size() -> None:
    cache = SentCache(entries=2)
    key = ("kg-border-service", "blo-karamyk-kg", None)
    assert cache.get(key, 10) is None
    cache.put(key, 10, [])
    assert cache.get(key, 10) == []
    assert cache.get(key, 11) is None  # the ledger grew: read it again
    for n in range(3):  # bounded: the oldest reading goes first
        cache.put(("a", str(n), None), 10, [])
    assert cache.get(key, 10) is None
    assert cache.get(("a", "2", None), 10) == []
