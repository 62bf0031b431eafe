"""The session store's limits: a credential's own sessions are capped, and a full store refuses
new ones rather than ending other principals' sessions."""

from __future__ import annotations

import pytest

from blo_exchange.web import sessions
from blo_exchange.web.sessions import MAX_SESSIONS_PER_CREDENTIAL, SessionsFull, SessionStore


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


def test_a_credential_keeps_only_its_newest_sessions() -> None:
    store = SessionStore(clock=Clock())
    analyst = store.create(b"analyst")
    mine = [store.create(b"attacker") for _ in range(MAX_SESSIONS_PER_CREDENTIAL + 5)]
    assert store.get(analyst.id) is analyst
    kept = [s for s in mine if store.get(s.id) is not None]
    assert kept == mine[-MAX_SESSIONS_PER_CREDENTIAL:]


def test_a_full_store_refuses_rather_than_evicts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sessions, "MAX_SESSIONS", 3)
    store = SessionStore(clock=Clock())
    others = [store.create(f"user-{i}".encode()) for i in range(3)]
    with pytest.raises(SessionsFull):
        store.create(b"newcomer")
    assert all(store.get(s.id) is s for s in others)
