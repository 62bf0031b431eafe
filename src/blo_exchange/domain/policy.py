"""Who receives an alert: recipient resolution from sharing agreements. Fails closed.

An agreement *applies* to an alert when, at the moment ``at``:

1. it is in force (``valid_from <= at < valid_until``);
2. the origin agency is one of its parties;
3. it covers the alert's border pair;
4. it covers the alert's kind;
5. the alert's TLP is no more restrictive than the agreement's ``max_tlp``.

The recipients are the parties of every applying agreement, plus the origin agency (which always
keeps its own record). Personal data (the nominal block) goes to the origin agency and to the
parties of applying agreements that allow it. No applying agreement, including no agreements at
all, raises :class:`~blo_exchange.errors.NoAgreement`: nothing is shared without a legal ground.

Not checked here: whether the origin agency's principal may speak for the node (``services``), or
whether a recipient has a current key (``crypto``); and handling codes, which restrict re-sharing
beyond these recipients, not the first sharing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.directory import Agreement
from blo_exchange.domain.marking import Tlp, tlp_rank
from blo_exchange.errors import NoAgreement

__all__ = ["Recipients", "applies", "resolve_recipients"]


@dataclass(frozen=True)
class Recipients:
    """The agencies an alert goes to and the agreements that allow it."""

    agencies: tuple[str, ...]
    """Sorted; includes the origin agency."""
    agreement_ids: tuple[str, ...]
    """Sorted ids of every applying agreement (each ledger entry names them)."""
    nominal_agencies: frozenset[str]
    """Who may read the nominal block: the origin and the parties of nominal agreements."""


def applies(
    agreement: Agreement,
    *,
    origin_agency: str,
    border_pair: str,
    kind: AlertKind | str,
    tlp: Tlp,
    at: datetime,
) -> bool:
    """Whether ``agreement`` covers this alert: steps 1 to 5 of the module docstring."""
    return (
        agreement.in_force(at)
        and origin_agency in agreement.parties
        and border_pair in agreement.border_pairs
        and kind in agreement.kinds  # AlertKind is a StrEnum: "seizure" == AlertKind.SEIZURE
        and tlp_rank(tlp) <= tlp_rank(agreement.max_tlp)
    )


def resolve_recipients(
    agreements: Iterable[Agreement],
    *,
    origin_agency: str,
    border_pair: str,
    kind: AlertKind | str,
    tlp: Tlp,
    at: datetime,
) -> Recipients:
    """The recipients of an alert under ``agreements``; raises ``NoAgreement`` if none applies."""
    if at.utcoffset() is None:
        raise ValueError("'at' must be timezone-aware")
    applying = [
        agreement
        for agreement in agreements
        if applies(
            agreement,
            origin_agency=origin_agency,
            border_pair=border_pair,
            kind=kind,
            tlp=tlp,
            at=at,
        )
    ]
    if not applying:
        raise NoAgreement(
            f"no sharing agreement in force covers border pair {border_pair}, kind {kind} "
            f"and TLP {Tlp(tlp)} for agency {origin_agency}"
        )
    agencies = {origin_agency}.union(*(a.parties for a in applying))
    nominal = {origin_agency}.union(*(a.parties for a in applying if a.nominal))
    return Recipients(
        agencies=tuple(sorted(agencies)),
        agreement_ids=tuple(sorted(a.id for a in applying)),
        nominal_agencies=frozenset(nominal),
    )
