"""The body of ``POST /v1/alerts``: an alert submission, one model per kind.

A submission is what a terminal sends. It never names its origin node or agency: those come from
the authenticated principal, so a terminal cannot speak for another office (and ``extra="forbid"``
makes any attempt a 422). The case and nominal blocks are handed to ``crypto`` as JSON-ready dicts
(``case_document``, ``nominal_document``) to become the envelope's two encrypted parts; the rest
goes into the clear header.

Parse with :func:`parse_alert_submission` (or :data:`ALERT_SUBMISSION_ADAPTER` directly); pass
``now`` for exact tests. Not here: who receives the alert (``policy``), the envelope (``crypto``).

The case and nominal models are re-exported from here so that callers import one module.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import Field, TypeAdapter, model_validator

from blo_exchange.domain._model import DomainModel
from blo_exchange.domain.cases import (
    NOW_CONTEXT_KEY,
    Concealment,
    Conveyance,
    FeedbackCase,
    Narrative,
    RiskCase,
    RiskTarget,
    Route,
    SeizureCase,
    SeizureItem,
)
from blo_exchange.domain.ids import (
    AlertId,
    BorderPair,
    CrossingPointId,
    countries_of,
    country_of_crossing_point,
)
from blo_exchange.domain.marking import Grading, Handling, Tlp
from blo_exchange.domain.nominal import Company, NominalBlock, Person, PersonDocument
from blo_exchange.domain.vocab import Outcome

__all__ = [
    "ALERT_SUBMISSION_ADAPTER",
    "AlertKind",
    "AlertSubmission",
    "Company",
    "Concealment",
    "Conveyance",
    "FeedbackCase",
    "FeedbackSubmission",
    "Narrative",
    "NominalBlock",
    "Person",
    "PersonDocument",
    "ReceiptRequest",
    "RiskCase",
    "RiskSubmission",
    "RiskTarget",
    "Route",
    "SeizureCase",
    "SeizureItem",
    "SeizureSubmission",
    "UploadId",
    "parse_alert_submission",
]


UploadId = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
"""An upload's id: 32 lower-case hex characters."""


class AlertKind(StrEnum):
    SEIZURE = "seizure"
    RISK = "risk"
    FEEDBACK = "feedback"


def _no_handling() -> Handling:
    return Handling(scheme="none")


class _Submission(DomainModel):
    """Fields every kind shares. Subclasses narrow ``kind`` and ``case``."""

    kind: AlertKind
    border_pair: BorderPair
    crossing_point: CrossingPointId
    tlp: Tlp
    handling: Handling = Field(default_factory=_no_handling)
    grading: Grading | None = None
    case: SeizureCase | RiskCase | FeedbackCase
    nominal: NominalBlock | None = None
    supersedes: AlertId | None = None
    attachments: list[UploadId] = Field(default_factory=list, max_length=16)
    """Uploads (``POST /v1/uploads``) sealed with the alert as its files, in this order."""

    @model_validator(mode="after")
    def _crossing_point_on_pair(self) -> Self:
        country = country_of_crossing_point(self.crossing_point)
        if country not in countries_of(self.border_pair):
            raise ValueError(
                f"crossing point {self.crossing_point!r} is in {country}, "
                f"which is not on border pair {self.border_pair!r}"
            )
        return self

    def case_document(self) -> dict[str, Any]:
        """The case block as JSON-ready data: strings, ints, lists, dicts; never a float."""
        return self.case.model_dump(mode="json", exclude_none=True)

    def nominal_document(self) -> dict[str, Any] | None:
        """The nominal block as JSON-ready data, or None when the alert carries none."""
        if self.nominal is None:
            return None
        return self.nominal.model_dump(mode="json", exclude_none=True)


class SeizureSubmission(_Submission):
    kind: Literal[AlertKind.SEIZURE]
    case: SeizureCase


class RiskSubmission(_Submission):
    kind: Literal[AlertKind.RISK]
    case: RiskCase


class FeedbackSubmission(_Submission):
    kind: Literal[AlertKind.FEEDBACK]
    case: FeedbackCase


AlertSubmission = Annotated[
    SeizureSubmission | RiskSubmission | FeedbackSubmission, Field(discriminator="kind")
]

ALERT_SUBMISSION_ADAPTER: Final[TypeAdapter[AlertSubmission]] = TypeAdapter(AlertSubmission)


def parse_alert_submission(
    data: str | bytes | Mapping[str, Any], *, now: datetime | None = None
) -> SeizureSubmission | RiskSubmission | FeedbackSubmission:
    """Validate a submission from JSON text or already-decoded data.

    ``now`` replaces the clock for the "not in the future" check. Raises
    ``pydantic.ValidationError`` (a 422 at the edge).
    """
    context = {NOW_CONTEXT_KEY: now} if now is not None else None
    if isinstance(data, str | bytes):
        return ALERT_SUBMISSION_ADAPTER.validate_json(data, context=context)
    return ALERT_SUBMISSION_ADAPTER.validate_python(data, context=context)


class ReceiptRequest(DomainModel):
    """An analyst's receipt on an alert: ``acknowledged``, or ``feedback`` with its outcome."""

    type: Literal["acknowledged", "feedback"]
    outcome: Outcome | None = None

    @model_validator(mode="after")
    def _outcome_for_feedback(self) -> Self:
        if (self.type == "feedback") != (self.outcome is not None):
            raise ValueError("outcome is required for feedback and not allowed for acknowledged")
        return self
