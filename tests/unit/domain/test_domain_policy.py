"""Recipient resolution: agreements apply or not, and an empty result fails closed."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.directory import Agreement
from blo_exchange.domain.marking import Tlp
from blo_exchange.domain.policy import Recipients, resolve_recipients
from blo_exchange.errors import NoAgreement, PolicyError

KG = "kg-border-service"
TJ = "tj-drug-control-agency"
UZ = "uz-customs"
AT = datetime(2026, 11, 28, 6, 40, tzinfo=UTC)


def agreement(**changes: Any) -> Agreement:
    data: dict[str, Any] = {
        "id": "kg-tj",
        "title": "KG-TJ BLO cooperation",
        "parties": [KG, TJ],
        "border_pairs": ["KG-TJ"],
        "kinds": ["seizure", "risk", "feedback"],
        "max_tlp": "AMBER",
        "nominal": True,
        "valid_from": "2026-01-01T00:00:00Z",
        "valid_until": "2027-01-01T00:00:00Z",
        "memorandum_ref": "MoU KG-TJ/2025/17",
    }
    data.update(changes)
    return Agreement.model_validate(data)


def resolve(agreements: list[Agreement], **changes: Any) -> Recipients:
    arguments: dict[str, Any] = {
        "origin_agency": KG,
        "border_pair": "KG-TJ",
        "kind": AlertKind.SEIZURE,
        "tlp": Tlp.AMBER,
        "at": AT,
    }
    arguments.update(changes)
    return resolve_recipients(agreements, **arguments)


def test_one_agreement() -> None:
    recipients = resolve([agreement()])
    assert recipients == Recipients(
        agencies=(KG, TJ), agreement_ids=("kg-tj",), nominal_agencies=frozenset({KG, TJ})
    )


def test_kind_may_be_a_plain_string_and_tlp_below_max() -> None:
    assert resolve([agreement()], kind="risk", tlp=Tlp.CLEAR).agencies == (KG, TJ)


@pytest.mark.parametrize(
    ("agreement_changes", "call_changes"),
    [
        ({"valid_until": "2026-11-28T06:40:00Z"}, {}),  # expired exactly at `at`
        ({"valid_from": "2026-11-28T06:40:00.001Z"}, {}),  # not yet valid
        ({"border_pairs": ["TJ-UZ"]}, {}),
        ({}, {"border_pair": "TJ-UZ"}),
        ({"kinds": ["risk"]}, {}),
        ({}, {"kind": "lookout"}),
        ({}, {"tlp": Tlp.AMBER_STRICT}),
        ({}, {"tlp": Tlp.RED}),
        ({"parties": [TJ, UZ]}, {}),
        ({}, {"origin_agency": UZ}),
    ],
)
def test_agreement_that_does_not_apply_fails_closed(
    agreement_changes: dict[str, Any], call_changes: dict[str, Any]
) -> None:
    with pytest.raises(NoAgreement):
        resolve([agreement(**agreement_changes)], **call_changes)


def test_no_agreements_at_all_fails_closed() -> None:
    with pytest.raises(NoAgreement, match=r"KG-TJ.*seizure.*AMBER") as caught:
        resolve([])
    assert isinstance(caught.value, PolicyError)


def test_message_names_pair_kind_and_tlp() -> None:
    with pytest.raises(NoAgreement, match=r"border pair KG-TJ, kind risk and TLP AMBER\+STRICT"):
        resolve([agreement()], kind="risk", tlp=Tlp.AMBER_STRICT)


def test_union_of_two_agreements() -> None:
    bilateral = agreement(nominal=False)
    regional = agreement(
        id="central-asia-blo",
        parties=[UZ, KG, TJ],
        border_pairs=["KG-TJ", "TJ-UZ"],
        max_tlp="RED",
        nominal=True,
    )
    recipients = resolve([regional, bilateral])
    assert recipients.agencies == (KG, TJ, UZ)
    assert recipients.agreement_ids == ("central-asia-blo", "kg-tj")
    assert recipients.nominal_agencies == frozenset({KG, TJ, UZ})
    red = resolve([regional, bilateral], tlp=Tlp.RED)
    assert red.agreement_ids == ("central-asia-blo",)


def test_nominal_agencies_only_from_nominal_agreements() -> None:
    no_personal_data = agreement(nominal=False)
    assert resolve([no_personal_data]).nominal_agencies == frozenset({KG})
    statistics = agreement(id="stats", parties=[KG, UZ], nominal=False)
    personal = agreement(id="personal", nominal=True)
    recipients = resolve([statistics, personal])
    assert recipients.agencies == (KG, TJ, UZ)
    assert recipients.nominal_agencies == frozenset({KG, TJ})


def test_origin_is_always_a_recipient() -> None:
    recipients = resolve([agreement()], origin_agency=TJ)
    assert TJ in recipients.agencies
    assert TJ in recipients.nominal_agencies


def test_accepts_any_iterable_once() -> None:
    assert resolve(iter([agreement()])).agreement_ids == ("kg-tj",)  # type: ignore[arg-type]


def test_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve([agreement()], at=datetime(2026, 11, 28))
    with pytest.raises(ValueError, match="timezone-aware"):
        resolve([], at=datetime(2026, 11, 28))
