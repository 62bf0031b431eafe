"""The auditors' retention report from ledger entries alone (ledger.retention_report): erased
where, overdue where, and extensions that count only from the origin agency, within the
agreement's maximum."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from blo_exchange.crypto.canonical import b64u_encode, canonical_json
from blo_exchange.demo.directory import DEMO_AGREEMENTS
from blo_exchange.domain.ids import format_time
from blo_exchange.domain.retention import expiry_day
from blo_exchange.ledger.retention_report import retention_report

KG, TJ = "kg-border-service", "tj-drug-control-agency"
CREATED = datetime(2026, 12, 5, 10, tzinfo=UTC)
END = expiry_day(CREATED, 30)


def shared(alert_id: str, nominal_to: tuple[str, ...] = (KG, TJ)) -> dict[str, Any]:
    record = {
        "recipients": [
            {"agency": a, "parts": ["case", "nominal"] if a in nominal_to else ["case"]}
            for a in (KG, TJ)
        ]
    }
    return {
        "type": "alert_shared",
        "alert_id": alert_id,
        "actor_node": "blo-karamyk-kg",
        "actor_agency": KG,
        "occurred_at": format_time(CREATED),
        "agreement_ids": ["mou-kg-tj-2026"],
        "record": b64u_encode(canonical_json(record)),
    }


def by(kind: str, alert_id: str, node: str, agency: str, **detail: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "alert_id": alert_id,
        "actor_node": node,
        "actor_agency": agency,
        "occurred_at": format_time(CREATED),
        "detail": detail,
        "index": 9,
    }


def test_erased_overdue_and_retained_per_agreement() -> None:
    entries = [
        shared("a1"),
        shared("a2"),
        shared("a3"),
        shared("a4", nominal_to=(KG,)),  # TJ got no nominal part: nothing to erase
        *(by("alert_delivered", a, "blo-karamyk-tj", TJ) for a in ("a1", "a2", "a3", "a4")),
        by("nominal_erased", "a1", "blo-karamyk-tj", TJ, erased_at=format_time(END)),
        # a3 kept to day 60 by KG; a "keep" by TJ, or beyond 90 days, does not count.
        by(
            "nominal_retention_extended",
            "a3",
            "blo-karamyk-kg",
            KG,
            until=format_time(expiry_day(CREATED, 60)),
        ),
        by(
            "nominal_retention_extended",
            "a2",
            "blo-karamyk-tj",
            TJ,
            until=format_time(expiry_day(CREATED, 60)),
        ),
        by(
            "nominal_retention_extended",
            "a2",
            "blo-karamyk-kg",
            KG,
            until=format_time(expiry_day(CREATED, 120)),
        ),
    ]
    report = retention_report(entries, DEMO_AGREEMENTS, at=END + timedelta(days=1))
    (section,) = report["agreements"]
    assert section["agreement_id"] == "mou-kg-tj-2026"
    assert [e["alert_id"] for e in section["erased"]] == ["a1"]
    assert section["overdue"] == [
        {
            "alert_id": "a2",
            "node": "blo-karamyk-tj",
            "agency": TJ,
            "expired_at": format_time(END),
        }
    ]
    assert section["retained"] == 1  # a3, kept
    assert report["refused_extensions"] == [
        {"alert_id": "a2", "node": "blo-karamyk-tj", "agency": TJ}
    ]
    # Before the end nothing is overdue.
    early = retention_report(entries, DEMO_AGREEMENTS, at=END - timedelta(seconds=1))
    assert early["agreements"][0]["overdue"] == []
