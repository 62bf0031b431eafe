"""Recipients' states from ledger entries, the sharing matrix, and the session store."""

from __future__ import annotations

from blo_exchange.ledger.ports import SharingCount
from blo_exchange.web.ledger_view import sent_alert, sharing_matrix
from blo_exchange.web.sessions import SessionStore, same_token

SHARED = {
    "type": "alert_shared",
    "alert_id": "a1",
    "actor_agency": "kg-border-service",
    "recipients": ["kg-border-service", "tj-drug-control-agency", "uz-customs-committee"],
    "border_pair": "KG-TJ",
    "kind": "seizure",
    "occurred_at": "2026-11-28T06:40:00.000Z",
}


def entry(type_: str, agency: str, **detail: str) -> dict[str, object]:
    return {
        "type": type_,
        "alert_id": "a1",
        "actor_agency": agency,
        "occurred_at": "t",
        "detail": detail,
    }


def test_each_recipient_gets_its_furthest_state() -> None:
    entries = [
        entry("alert_delivered", "tj-drug-control-agency"),
        entry("feedback", "tj-drug-control-agency", outcome="seized"),
        entry("alert_acknowledged", "tj-drug-control-agency"),  # late: does not move it back
        entry("alert_delivered", "kg-border-service"),
        {**entry("alert_delivered", "uz-customs-committee"), "alert_id": "another"},
    ]
    sent = sent_alert(SHARED, entries)
    states = {r.agency: (r.state, r.outcome) for r in sent.recipients}
    assert states == {
        "kg-border-service": ("delivered", None),
        "tj-drug-control-agency": ("feedback", "seized"),
        "uz-customs-committee": ("pending", None),
    }
    assert sent_alert(SHARED, []).recipients[0].state == "origin"


def test_matrix_sums_pairs_and_kinds() -> None:
    matrix = sharing_matrix(
        [
            SharingCount("kg-border-service", "tj-drug-control-agency", "KG-TJ", "seizure", 3),
            SharingCount("kg-border-service", "tj-drug-control-agency", "KG-TJ", "risk", 1),
            SharingCount("tj-drug-control-agency", "uz-customs-committee", "TJ-UZ", "risk", 1),
        ]
    )
    assert matrix.origins == ("kg-border-service", "tj-drug-control-agency")
    assert matrix.recipients == ("tj-drug-control-agency", "uz-customs-committee")
    assert matrix.count("kg-border-service", "tj-drug-control-agency") == 4
    assert matrix.count("kg-border-service", "uz-customs-committee") == 0
    levels = {(c.row, c.column): c.level for c in matrix.cells}
    assert levels[(0, 0)] == 4
    assert levels[(0, 1)] == 0
    assert 1 <= levels[(1, 1)] < 4
    assert sharing_matrix([]).empty


def test_sessions_expire_and_tokens_compare() -> None:
    now = [1000.0]
    store = SessionStore(clock=lambda: now[0])
    session = store.create(b"hash")
    assert store.get(session.id) is session
    assert store.get("other") is None
    assert store.get(None) is None
    now[0] += 8 * 3600
    assert store.get(session.id) is None
    assert same_token(session.csrf, session.csrf)
    assert not same_token(None, session.csrf)
    assert not same_token("x", session.csrf)
