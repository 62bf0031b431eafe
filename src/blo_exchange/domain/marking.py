"""Markings on an alert: the Traffic Light Protocol, handling codes and source/information grading.

These travel in the clear in the envelope header, so every node can enforce them before it
decrypts anything. Codes are never translated (``AMBER+STRICT`` is the same string in Dushanbe and
Bishkek); the English explanations in ``TLP_LABELS``, ``HANDLING_LABELS`` and ``GRADING_LABELS``
are what the web UI shows beside them, and also the single list of valid codes per scheme.

Not here: who may receive an alert (``policy``) or how re-sharing is recorded (the ledger).
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Final, Literal, Self

from pydantic import Field, model_validator

from blo_exchange.domain._model import DomainModel

__all__ = [
    "GRADING_LABELS",
    "HANDLING_LABELS",
    "TLP_LABELS",
    "Grading",
    "GradingScheme",
    "Handling",
    "HandlingScheme",
    "Tlp",
    "restricts_resharing",
    "tlp_rank",
]


class Tlp(StrEnum):
    """FIRST Traffic Light Protocol 2.0 labels."""

    CLEAR = "CLEAR"
    GREEN = "GREEN"
    AMBER = "AMBER"
    AMBER_STRICT = "AMBER+STRICT"
    RED = "RED"


_TLP_RANK: Final[Mapping[Tlp, int]] = {tlp: rank for rank, tlp in enumerate(Tlp)}

TLP_LABELS: Final[Mapping[Tlp, str]] = {
    Tlp.CLEAR: "Disclosure is not limited; recipients may spread this to the world.",
    Tlp.GREEN: (
        "Recipients may share this within their community, but not via publicly accessible "
        "channels."
    ),
    Tlp.AMBER: (
        "Limited disclosure: recipients may share this on a need-to-know basis within their "
        "organisation and its clients."
    ),
    Tlp.AMBER_STRICT: (
        "Limited disclosure: recipients may share this on a need-to-know basis within their "
        "organisation only."
    ),
    Tlp.RED: "For the eyes and ears of individual recipients only; no further disclosure.",
}


def tlp_rank(tlp: Tlp | str) -> int:
    """How restrictive a TLP label is: CLEAR 0, GREEN 1, AMBER 2, AMBER+STRICT 3, RED 4."""
    return _TLP_RANK[Tlp(tlp)]


HandlingScheme = Literal["europol", "uk-3x5x2", "none"]
GradingScheme = Literal["admiralty", "europol", "uk-3x5x2"]

HANDLING_LABELS: Final[Mapping[str, Mapping[str, str]]] = {
    "europol": {
        "H0": "May be used for law enforcement purposes.",
        "H1": (
            "Must not be used as evidence in judicial proceedings without the provider's "
            "permission."
        ),
        "H2": "Must not be disseminated further without the provider's permission.",
        "H3": "Other conditions set by the provider apply (see the conditions).",
    },
    "uk-3x5x2": {
        "P": "Lawful sharing permitted.",
        "C": "Lawful sharing permitted subject to the conditions stated.",
    },
    "none": {},
}

# Codes whose meaning is the free-text conditions, so the conditions must be present.
_CODES_NEEDING_CONDITIONS: Final[Mapping[str, frozenset[str]]] = {
    "europol": frozenset({"H3"}),
    "uk-3x5x2": frozenset({"C"}),
    "none": frozenset(),
}

GRADING_LABELS: Final[Mapping[str, Mapping[str, Mapping[str, str]]]] = {
    "admiralty": {
        "source": {
            "A": "Completely reliable",
            "B": "Usually reliable",
            "C": "Fairly reliable",
            "D": "Not usually reliable",
            "E": "Unreliable",
            "F": "Reliability cannot be judged",
        },
        "information": {
            "1": "Confirmed by other sources",
            "2": "Probably true",
            "3": "Possibly true",
            "4": "Doubtful",
            "5": "Improbable",
            "6": "Truth cannot be judged",
        },
    },
    "europol": {
        "source": {
            "A": "No doubt about the source's authenticity, trustworthiness and competence",
            "B": "Source has in most instances proved reliable",
            "C": "Source has in most instances proved unreliable",
            "X": "Reliability of the source cannot be assessed",
        },
        "information": {
            "1": "Known to be true without reservation",
            "2": "Known personally to the source but not to the official passing it on",
            "3": "Not known personally to the source but corroborated by recorded information",
            "4": "Not known personally to the source and cannot be corroborated",
        },
    },
    "uk-3x5x2": {
        "source": {
            "1": "Reliable",
            "2": "Untested",
            "3": "Not reliable",
        },
        "information": {
            "A": "Known directly to the source",
            "B": "Known indirectly to the source but corroborated",
            "C": "Known indirectly to the source",
            "D": "Not known",
            "E": "Suspected to be false",
        },
    },
}


def _one_of(codes: Mapping[str, str]) -> str:
    return ", ".join(codes)


class Handling(DomainModel):
    """A handling code under one scheme, plus the free-text conditions some codes require.

    Scheme ``none`` carries neither a code nor conditions: conditions nobody can enforce under a
    named code would look binding to the reader and be ignored by the broker.
    """

    scheme: HandlingScheme
    code: str | None = None
    conditions: str | None = Field(default=None, min_length=1, max_length=1000)

    @model_validator(mode="after")
    def _check_code(self) -> Self:
        codes = HANDLING_LABELS[self.scheme]
        if self.scheme == "none":
            if self.code is not None or self.conditions is not None:
                raise ValueError("handling scheme 'none' takes neither a code nor conditions")
            return self
        if self.code not in codes:
            raise ValueError(
                f"handling code for scheme {self.scheme!r} must be one of {_one_of(codes)}; "
                f"got {self.code!r}"
            )
        needs = _CODES_NEEDING_CONDITIONS[self.scheme]
        if self.code in needs and (self.conditions is None or not self.conditions.strip()):
            raise ValueError(
                f"handling code {self.code!r} of scheme {self.scheme!r} requires 'conditions'"
            )
        return self


def restricts_resharing(handling: Handling, tlp: Tlp) -> bool:
    """Whether the alert may go beyond its original recipients only with the originator's leave.

    True for TLP RED and for Europol handling code H2.
    """
    return Tlp(tlp) is Tlp.RED or (handling.scheme == "europol" and handling.code == "H2")


class Grading(DomainModel):
    """An evaluation of the source's reliability and the information's credibility."""

    scheme: GradingScheme
    source: str
    information: str

    @model_validator(mode="after")
    def _check_codes(self) -> Self:
        labels = GRADING_LABELS[self.scheme]
        for axis, value in (("source", self.source), ("information", self.information)):
            if value not in labels[axis]:
                raise ValueError(
                    f"{self.scheme} {axis} grade must be one of {_one_of(labels[axis])}; "
                    f"got {value!r}"
                )
        return self
