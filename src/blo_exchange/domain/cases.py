"""The case blocks of alerts: what was seized, what risk was seen, what came of acting on an alert.

A case block is the part of an alert that carries no personal data (that is the nominal block, in
``nominal``); it is encrypted as the envelope's ``case`` part. Everything here is validated to the
letter because it is signed as sent: quantities are decimal strings (never floats), times are
RFC 3339 UTC, codes come from ``vocab``.

``SeizureCase.observed_at`` is checked against a clock: the validation context's ``"now"``
(:data:`NOW_CONTEXT_KEY`) when given, else :func:`~blo_exchange.domain.ids.utc_now`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Annotated, Final, Literal, Self

from pydantic import AfterValidator, Field, ValidationInfo, field_validator, model_validator

from blo_exchange.domain._model import DomainModel
from blo_exchange.domain.ids import AlertId, CountryCode, UtcTimestamp, utc_now
from blo_exchange.domain.vocab import (
    ConcealmentMethod,
    ConveyanceMode,
    DetectionMethod,
    Form,
    Outcome,
    Substance,
    Unit,
)

__all__ = [
    "MAX_CLOCK_SKEW",
    "NOW_CONTEXT_KEY",
    "STORED_CASE",
    "TIME_WINDOW",
    "CasNumber",
    "Concealment",
    "Conveyance",
    "FeedbackCase",
    "LanguageTag",
    "Narrative",
    "Quantity",
    "RiskCase",
    "RiskTarget",
    "Route",
    "SeizureCase",
    "SeizureItem",
    "parse_cas_number",
    "parse_quantity",
]

STORED_CONTEXT_KEY: Final = "stored"
STORED_CASE: Final = {STORED_CONTEXT_KEY: True}
"""Validation context for a case read back from a verified envelope: its times were checked
against the clock when it was posted, and a later reading must not fail for the clock."""
NOW_CONTEXT_KEY: Final = "now"
"""Key of the validation context entry that overrides the clock for future-time checks."""

MAX_CLOCK_SKEW: Final = timedelta(minutes=5)
"""How far in the future an observation may lie (terminals' clocks drift)."""

TIME_WINDOW: Final = timedelta(days=5 * 366)
"""How far from now an observation (past) or a risk's validity (either way) may lie: further
is a typo or a probe (year 0001), never an alert worth sharing."""

_QUANTITY_RE: Final = re.compile(r"[0-9]{1,9}(?:\.[0-9]{1,6})?")
_CAS_RE: Final = re.compile(r"([0-9]{2,7})-([0-9]{2})-([0-9])")
_LANG_RE: Final = re.compile(r"[a-zA-Z]{2,3}(?:-[a-zA-Z0-9]{2,8})*")


def parse_quantity(value: str) -> str:
    """Return ``value`` if it is a positive decimal string such as ``"12.5"`` (no exponent)."""
    if _QUANTITY_RE.fullmatch(value) is None:
        raise ValueError(
            "quantity must be a decimal string of up to 9 digits and 6 decimals, e.g. '12.5'"
        )
    if Decimal(value) <= 0:
        raise ValueError("quantity must be greater than zero")
    return value


def parse_cas_number(value: str) -> str:
    """Return ``value`` if it is a CAS Registry Number with a correct check digit."""
    match = _CAS_RE.fullmatch(value)
    if match is None:
        raise ValueError(f"CAS number must look like '108-24-7'; got {value!r}")
    body = match.group(1) + match.group(2)
    total = sum(int(d) * weight for weight, d in enumerate(reversed(body), start=1))
    if total % 10 != int(match.group(3)):
        raise ValueError(f"CAS number {value!r} has a wrong check digit")
    return value


def _parse_language(value: str) -> str:
    if _LANG_RE.fullmatch(value) is None:
        raise ValueError(
            f"lang must be a BCP 47 language tag such as 'ru' or 'tg-Cyrl'; got {value!r}"
        )
    return value


# strict: a JSON number (12.5) is rejected, not turned into "12.5"; floats never get in.
Quantity = Annotated[
    str,
    Field(strict=True, pattern=r"^[0-9]{1,9}(\.[0-9]{1,6})?$", examples=["12.5"]),
    AfterValidator(parse_quantity),
]
CasNumber = Annotated[
    str,
    Field(strict=True, pattern=r"^[0-9]{2,7}-[0-9]{2}-[0-9]$"),
    AfterValidator(parse_cas_number),
]
LanguageTag = Annotated[
    str,
    Field(max_length=35, examples=["ru", "tg", "ky", "uz-Cyrl"]),
    AfterValidator(_parse_language),
]
_Text200 = Annotated[str, Field(min_length=1, max_length=200)]


class SeizureItem(DomainModel):
    """One substance seized. ``cas_number`` is given for precursors and only for them."""

    substance: Substance
    cas_number: CasNumber | None = None
    form: Form
    quantity: Quantity
    unit: Unit
    package_count: int | None = Field(default=None, strict=True, ge=0, le=1_000_000_000)

    @model_validator(mode="after")
    def _cas_iff_precursor(self) -> Self:
        if self.substance is Substance.PRECURSOR and self.cas_number is None:
            raise ValueError("a precursor needs its cas_number")
        if self.substance is not Substance.PRECURSOR and self.cas_number is not None:
            raise ValueError("cas_number is only for substance 'precursor'")
        return self


class Concealment(DomainModel):
    method: ConcealmentMethod
    place: str = Field(max_length=200)


class Conveyance(DomainModel):
    mode: ConveyanceMode
    vehicle_type: str | None = Field(default=None, max_length=100)
    registration_country: CountryCode | None = None
    identifier: str | None = Field(default=None, max_length=64)


class Route(DomainModel):
    origin: CountryCode | None = None
    departure: str | None = Field(default=None, max_length=100)
    transit: list[CountryCode] = Field(default_factory=list, max_length=10)
    destination: CountryCode | None = None


class Narrative(DomainModel):
    """Free text in the officer's language; ``lang`` tells the reader which (BCP 47)."""

    text: str = Field(min_length=1, max_length=5000)
    lang: LanguageTag


class SeizureCase(DomainModel):
    observed_at: UtcTimestamp
    items: list[SeizureItem] = Field(min_length=1, max_length=50)
    concealment: Concealment | None = None
    detection_method: DetectionMethod
    conveyance: Conveyance | None = None
    route: Route | None = None
    narrative: Narrative | None = None

    @field_validator("observed_at")
    @classmethod
    def _not_in_future(cls, value: datetime, info: ValidationInfo) -> datetime:
        now = _context_now(info)
        if now is None:
            return value
        if value > now + MAX_CLOCK_SKEW:
            raise ValueError(
                f"observed_at is more than {MAX_CLOCK_SKEW} in the future; check the clock"
            )
        if value < now - TIME_WINDOW:
            raise ValueError(f"observed_at is more than {TIME_WINDOW.days} days ago")
        return value


def _context_now(info: ValidationInfo) -> datetime | None:
    """The clock times are checked against; None for a stored case (:data:`STORED_CASE`)."""
    context = info.context
    if isinstance(context, Mapping) and context.get(STORED_CONTEXT_KEY):
        return None
    now = context.get(NOW_CONTEXT_KEY) if isinstance(context, Mapping) else None
    if now is None:
        return utc_now()
    if not isinstance(now, datetime) or now.utcoffset() is None:
        raise TypeError(f"validation context {NOW_CONTEXT_KEY!r} must be an aware datetime")
    return now


class RiskTarget(DomainModel):
    """Something to look out for: a plate, a route, a company..."""

    type: Literal["plate", "route", "company", "person", "phone", "document", "container", "other"]
    value: str = Field(min_length=1, max_length=200)


class RiskCase(DomainModel):
    subject: str = Field(min_length=1, max_length=200)
    indicators: list[_Text200] = Field(min_length=1, max_length=20)
    modus_operandi: str | None = Field(default=None, max_length=2000)
    targets: list[RiskTarget] = Field(default_factory=list, max_length=50)
    valid_until: UtcTimestamp | None = None
    recommended_action: str | None = Field(default=None, max_length=1000)
    narrative: Narrative | None = None

    @field_validator("valid_until")
    @classmethod
    def _sane_validity(cls, value: datetime | None, info: ValidationInfo) -> datetime | None:
        now = _context_now(info)
        if now is None:
            return value
        if value is not None and not now - TIME_WINDOW <= value <= now + TIME_WINDOW:
            raise ValueError(f"valid_until must be within {TIME_WINDOW.days} days of now")
        return value


class FeedbackCase(DomainModel):
    """The result of acting on an earlier alert."""

    alert_id: AlertId
    outcome: Outcome
    narrative: Narrative | None = None
