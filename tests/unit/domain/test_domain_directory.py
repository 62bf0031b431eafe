"""Directory records: agencies, nodes, principals and agreements."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.directory import Agency, Agreement, Node, Principal, Role
from blo_exchange.domain.marking import Tlp

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def test_agency_id_starts_with_its_country() -> None:
    agency = Agency(id="kg-border-service", country="KG", name="Border Service of Kyrgyzstan")
    assert agency.country == "KG"
    with pytest.raises(ValidationError, match="'tj'"):
        Agency(id="kg-border-service", country="TJ", name="Border Service")
    with pytest.raises(ValidationError):
        Agency(id="kg-border-service", country="KG", name="")


def node(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "blo-karamyk-kg",
        "agency_id": "kg-border-service",
        "border_pairs": ["KG-TJ"],
        "crossing_points": ["KG-KARAMYK"],
        "url": "http://127.0.0.1:8101",
    }
    data.update(changes)
    return data


def test_node() -> None:
    parsed = Node.model_validate(node())
    assert parsed.border_pairs == ("KG-TJ",)
    assert parsed.crossing_points == ("KG-KARAMYK",)
    assert Node.model_validate(node(url=None, crossing_points=[])).url is None


@pytest.mark.parametrize(
    "changes",
    [
        {"border_pairs": []},
        {"border_pairs": ["TJ-KG"]},
        {"border_pairs": ["KG-TJ", "KG-TJ"]},
        {"crossing_points": ["UZ-OYBEK"]},
        {"id": "BLO_KARAMYK"},
        {"agency_id": "border-service"},
        {"url": "ftp://example.org"},
        {"url": "karamyk.local"},
        {"keys": []},
    ],
)
def test_invalid_nodes(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Node.model_validate(node(**changes))


def principal(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "prn-1",
        "role": "terminal",
        "node_id": "blo-karamyk-kg",
        "agency_id": "kg-border-service",
        "label": "Karamyk KG terminal 1",
        "created_at": T0,
    }
    data.update(changes)
    return data


@pytest.mark.parametrize(
    ("role", "node_id", "agency_id"),
    [
        ("terminal", "blo-karamyk-kg", "kg-border-service"),
        ("analyst", None, "tj-drug-control-agency"),
        ("auditor", None, None),
        ("admin", None, None),
    ],
)
def test_principal_bindings(role: str, node_id: str | None, agency_id: str | None) -> None:
    parsed = Principal.model_validate(principal(role=role, node_id=node_id, agency_id=agency_id))
    assert parsed.role is Role(role)


@pytest.mark.parametrize(
    ("role", "node_id", "agency_id", "message"),
    [
        ("terminal", None, "kg-border-service", "must have a node_id"),
        ("terminal", "blo-karamyk-kg", None, "must have an agency_id"),
        ("analyst", None, None, "must have an agency_id"),
        ("analyst", "blo-karamyk-kg", "kg-border-service", "must not have a node_id"),
        ("auditor", None, "kg-border-service", "must not have an agency_id"),
        ("admin", "blo-karamyk-kg", None, "must not have a node_id"),
    ],
)
def test_principal_binding_errors(
    role: str, node_id: str | None, agency_id: str | None, message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Principal.model_validate(principal(role=role, node_id=node_id, agency_id=agency_id))


def test_principal_is_active() -> None:
    p = Principal.model_validate(
        principal(expires_at=T0 + timedelta(days=30), revoked_at=T0 + timedelta(days=10))
    )
    assert not p.is_active(T0 - timedelta(seconds=1))
    assert p.is_active(T0)
    assert p.is_active(T0 + timedelta(days=10) - timedelta(microseconds=1))
    assert not p.is_active(T0 + timedelta(days=10))
    unrevoked = Principal.model_validate(principal(expires_at=T0 + timedelta(days=30)))
    assert unrevoked.is_active(T0 + timedelta(days=29))
    assert not unrevoked.is_active(T0 + timedelta(days=30))
    assert Principal.model_validate(principal()).is_active(T0 + timedelta(days=3650))
    with pytest.raises(ValueError, match="timezone-aware"):
        p.is_active(datetime(2026, 1, 2))


def test_principal_times() -> None:
    with pytest.raises(ValidationError, match="after created_at"):
        Principal.model_validate(principal(expires_at=T0))
    with pytest.raises(ValidationError, match="timezone-aware"):
        Principal.model_validate(principal(created_at=datetime(2026, 1, 1)))
    parsed = Principal.model_validate_json(
        '{"id": "a", "role": "auditor", "label": "x", "created_at": "2026-01-01T06:00:00+06:00"}'
    )
    assert parsed.created_at == T0


def agreement(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "kg-tj-2026",
        "title": "KG-TJ BLO cooperation",
        "parties": ["kg-border-service", "tj-drug-control-agency"],
        "border_pairs": ["KG-TJ"],
        "kinds": ["seizure", "risk", "feedback"],
        "max_tlp": "AMBER",
        "nominal": True,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
        "memorandum_ref": "MoU KG-TJ/2025/17",
    }
    data.update(changes)
    return data


def test_agreement() -> None:
    parsed = Agreement.model_validate(agreement())
    assert parsed.kinds == (AlertKind.SEIZURE, AlertKind.RISK, AlertKind.FEEDBACK)
    assert parsed.max_tlp is Tlp.AMBER
    assert parsed.in_force(T0)
    assert parsed.in_force(datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert not parsed.in_force(datetime(2027, 1, 1, tzinfo=UTC))
    assert not parsed.in_force(T0 - timedelta(microseconds=1))
    assert Agreement.model_validate(agreement(valid_until=None)).in_force(
        datetime(2100, 1, 1, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    "changes",
    [
        {"id": "KG TJ"},
        {"parties": ["kg-border-service"]},
        {"parties": ["kg-border-service", "kg-border-service"]},
        {"border_pairs": []},
        {"border_pairs": ["TJ-KG"]},
        {"kinds": []},
        {"kinds": ["lookout"]},
        {"max_tlp": "BLACK"},
        {"nominal": "yes"},
        {"valid_until": "2025-12-31T00:00:00Z"},
        {"valid_from": "2026-01-01T00:00:00"},
        {"memorandum_ref": ""},
    ],
)
def test_invalid_agreements(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        Agreement.model_validate(agreement(**changes))
