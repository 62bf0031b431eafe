"""How long a recipient may keep an alert's nominal block, and who may extend it.

The contract is docs/retention.md.

Rules, from directory facts and the alert's signed header only:

1. The agreements that govern an alert's nominal block are those it cites (``agreement_ids``)
   that allow the nominal block. The strictest one governs: the one with the fewest
   ``retention_days`` (ties: the lowest id). Several legal grounds never add up to a longer one.
2. The nominal block expires at 00:00 UTC of the day ``created_at + retention_days`` falls on:
   rounded down to a whole day, so a partner never keeps it longer than agreed, and every alert
   that expires on one day shares one node-local key (``crypto.retention``).
3. Only the originating agency may extend it, with a reason, to a new end that is later than the
   current one and no later than ``created_at + retention_max_days`` of the governing agreement.

Not decided here: whether a message claiming an extension was signed by the originator's node
(``services.signed``), nor what a node does with its keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from blo_exchange.domain.directory import Agreement

__all__ = [
    "Retention",
    "check_extension",
    "day_of",
    "expiry_day",
    "governing_retention",
    "stream_outlives_retention",
]

_MAX_REASON = 500


@dataclass(frozen=True)
class Retention:
    """What rule (1) gives for one alert: the agreement, when the block expires, how far it may
    be extended."""

    agreement_id: str
    expires_at: datetime
    max_until: datetime


def expiry_day(created_at: datetime, days: int) -> datetime:
    """Rule (2): 00:00 UTC of the day ``created_at + days`` falls on."""
    if created_at.utcoffset() is None:
        raise ValueError("created_at must be timezone-aware")
    end = (created_at + timedelta(days=days)).astimezone(UTC)
    return datetime.combine(end.date(), time(0), tzinfo=UTC)


def governing_retention(
    agreements: Iterable[Agreement], cited: Sequence[str], created_at: datetime
) -> Retention | None:
    """Rule (1) for an alert citing ``cited``; None when none of them allows the nominal block."""
    wanted = set(cited)
    nominal = sorted(
        (a for a in agreements if a.id in wanted and a.nominal),
        key=lambda a: (a.retention_days, a.id),
    )
    if not nominal:
        return None
    governing = nominal[0]
    return Retention(
        agreement_id=governing.id,
        expires_at=expiry_day(created_at, governing.retention_days),
        max_until=expiry_day(created_at, governing.retention_max_days),
    )


def check_extension(
    *,
    requester_agency: str,
    origin_agency: str,
    current: datetime,
    until: datetime,
    max_until: datetime,
    reason: str,
) -> str | None:
    """Rule (3): why an extension may not be granted (a short reason), or None when it may."""
    if requester_agency != origin_agency:
        return "not_originator"
    if not reason.strip() or len(reason) > _MAX_REASON:
        return "reason_required"
    if until <= current:
        return "not_later"
    if until > max_until:
        return "beyond_maximum"
    return None


def stream_outlives_retention(
    max_age: timedelta | None, agreements: Iterable[Agreement], agency: str
) -> bool:
    """Whether the alerts stream keeps envelopes (nominal ciphertext and its agency-sealed key
    included) longer than the shortest nominal retention of ``agency``'s agreements; ``max_age``
    None is no limit. False when the agency has no nominal agreement."""
    shortest = min(
        (a.retention_days for a in agreements if a.nominal and agency in a.parties), default=None
    )
    if shortest is None:
        return False
    return max_age is None or max_age > timedelta(days=shortest)


def day_of(moment: datetime) -> date:
    """The UTC day a moment falls on: the name of the node-local key of that expiry."""
    return moment.astimezone(UTC).date()
