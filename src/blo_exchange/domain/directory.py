"""The directory's records: agencies, nodes, principals and sharing agreements.

These are value objects with their invariants checked on construction; the ``ledger`` adapter
loads them from Postgres and the API serves them at ``GET /v1/directory``. Keys are not here (they
are the ``crypto`` package's business), nor is the question of who receives what (``policy``).

Every datetime is aware UTC; methods that take a moment (``at``) refuse naive datetimes rather
than guess their zone.
"""

from __future__ import annotations

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Final, Self

from pydantic import (
    AfterValidator,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    StrictBool,
    model_serializer,
    model_validator,
)

from blo_exchange.domain._model import DomainModel
from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.ids import (
    AgencyId,
    BorderPair,
    CountryCode,
    CrossingPointId,
    NodeId,
    UtcTimestamp,
    countries_of,
    country_of_crossing_point,
)
from blo_exchange.domain.marking import Tlp

__all__ = [
    "DEFAULT_NOMINAL_RETENTION_DAYS",
    "Agency",
    "Agreement",
    "AgreementId",
    "Node",
    "Principal",
    "Role",
]

DEFAULT_NOMINAL_RETENTION_DAYS: Final = 180
"""How long the nominal block may be kept under a nominal agreement signed before agreements
stated it (docs/statements.md). New agreements state it: ``agreement propose`` requires it."""

_RETENTION_FIELDS: Final = ("nominal_retention_days", "nominal_retention_max_days")

_SLUG_RE: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_URL_RE: Final = re.compile(r"https?://[^\s/?#]+(?:[/?#]\S*)?")


def _parse_agreement_id(value: str) -> str:
    if len(value) > 64 or _SLUG_RE.fullmatch(value) is None:
        raise ValueError(f"agreement id must be a lower-case slug of at most 64; got {value!r}")
    return value


AgreementId = Annotated[str, AfterValidator(_parse_agreement_id)]


def _aware(at: datetime) -> datetime:
    if at.utcoffset() is None:
        raise ValueError("'at' must be timezone-aware")
    return at


def _unique(values: tuple[str, ...], what: str) -> None:
    if len(set(values)) != len(values):
        raise ValueError(f"{what} must not repeat")


class Agency(DomainModel):
    id: AgencyId
    country: CountryCode
    name: str = Field(min_length=1, max_length=200)

    @model_validator(mode="after")
    def _id_names_country(self) -> Self:
        if self.id[:2] != self.country.lower():
            raise ValueError(
                f"agency id {self.id!r} must start with its country in lower case "
                f"({self.country.lower()!r})"
            )
        return self


class Node(DomainModel):
    """A BLO office's service instance: its agency, the pairs it serves, its crossing points."""

    id: NodeId
    agency_id: AgencyId
    border_pairs: tuple[BorderPair, ...] = Field(min_length=1)
    crossing_points: tuple[CrossingPointId, ...] = ()
    url: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique(self.border_pairs, "border_pairs")
        _unique(self.crossing_points, "crossing_points")
        served = {country for pair in self.border_pairs for country in countries_of(pair)}
        for point in self.crossing_points:
            if country_of_crossing_point(point) not in served:
                raise ValueError(f"crossing point {point!r} is on none of the node's border pairs")
        if self.url is not None and _URL_RE.fullmatch(self.url) is None:
            raise ValueError(f"node url must be an http(s) URL; got {self.url!r}")
        return self


class Role(StrEnum):
    TERMINAL = "terminal"
    ANALYST = "analyst"
    AUDITOR = "auditor"
    ADMIN = "admin"


class Principal(DomainModel):
    """A credential and what it is bound to. The token itself is never here, only its owner.

    A terminal speaks for one node (and so one agency); an analyst reads for one agency;
    auditors and admins are bound to neither.
    """

    id: str = Field(min_length=1, max_length=128)
    role: Role
    node_id: NodeId | None = None
    agency_id: AgencyId | None = None
    label: str = Field(default="", max_length=200)
    created_at: UtcTimestamp
    expires_at: UtcTimestamp | None = None
    revoked_at: UtcTimestamp | None = None
    device_certificate: str | None = Field(default=None, pattern=r"^[0-9a-f]{64}$")
    """SHA-256 (hex) of the device certificate bound to it: then its token alone is refused,
    it must come with that certificate (see ``services.auth``)."""

    @model_validator(mode="after")
    def _binding_matches_role(self) -> Self:
        has_node, has_agency = self.node_id is not None, self.agency_id is not None
        expected = {
            Role.TERMINAL: (True, True),
            Role.ANALYST: (False, True),
            Role.AUDITOR: (False, False),
            Role.ADMIN: (False, False),
        }[self.role]
        if (has_node, has_agency) != expected:
            need_node, need_agency = expected
            raise ValueError(
                f"a {self.role} principal must {'' if need_node else 'not '}have a node_id "
                f"and must {'' if need_agency else 'not '}have an agency_id"
            )
        if self.expires_at is not None and self.expires_at <= self.created_at:
            raise ValueError("expires_at must be after created_at")
        return self

    def is_active(self, at: datetime) -> bool:
        """Created at or before ``at``, not expired and not revoked by then."""
        _aware(at)
        if at < self.created_at:
            return False
        if self.expires_at is not None and at >= self.expires_at:
            return False
        return self.revoked_at is None or at < self.revoked_at


class Agreement(DomainModel):
    """A sharing agreement: the legal ground on which alerts cross a border.

    ``nominal`` says whether personal data (the nominal block) may be shared under it;
    ``nominal_retention_days`` how long a recipient may keep it (from the alert's ``created_at``),
    and ``nominal_retention_max_days`` how far the originating agency may extend that, alert by
    alert, with a reason (default: not at all). Both are absent from agreements signed before
    they existed, and then serialise as before, so those statements' ids and ledger digests stay
    the same; such a nominal agreement keeps for :data:`DEFAULT_NOMINAL_RETENTION_DAYS`.
    """

    id: AgreementId
    title: str = Field(min_length=1, max_length=300)
    parties: tuple[AgencyId, ...] = Field(min_length=2)
    border_pairs: tuple[BorderPair, ...] = Field(min_length=1)
    kinds: tuple[AlertKind, ...] = Field(min_length=1)
    max_tlp: Tlp
    nominal: StrictBool
    valid_from: UtcTimestamp
    valid_until: UtcTimestamp | None = None
    memorandum_ref: str = Field(min_length=1, max_length=300)
    nominal_retention_days: int | None = Field(default=None, ge=1, le=3650, strict=True)
    nominal_retention_max_days: int | None = Field(default=None, ge=1, le=3650, strict=True)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        _unique(self.parties, "parties")
        _unique(self.border_pairs, "border_pairs")
        _unique(self.kinds, "kinds")
        if self.valid_until is not None and self.valid_until <= self.valid_from:
            raise ValueError("valid_until must be after valid_from")
        if not self.nominal and (
            self.nominal_retention_days is not None or self.nominal_retention_max_days is not None
        ):
            raise ValueError("only a nominal agreement states a nominal retention")
        if self.nominal_retention_max_days is not None and (
            self.nominal_retention_days is None
            or self.nominal_retention_max_days < self.nominal_retention_days
        ):
            raise ValueError("nominal_retention_max_days must be at least nominal_retention_days")
        return self

    @model_serializer(mode="wrap")
    def _without_absent_retention(
        self, handler: SerializerFunctionWrapHandler, info: SerializationInfo
    ) -> dict[str, object]:
        fields: dict[str, object] = handler(self)
        for name in _RETENTION_FIELDS:
            if fields.get(name) is None:
                fields.pop(name, None)
        return fields

    @property
    def retention_days(self) -> int:
        """Days a recipient may keep the nominal block of an alert under this agreement."""
        if self.nominal_retention_days is None:
            return DEFAULT_NOMINAL_RETENTION_DAYS
        return self.nominal_retention_days

    @property
    def retention_max_days(self) -> int:
        """Days from ``created_at`` beyond which no extension may keep it."""
        if self.nominal_retention_max_days is None:
            return self.retention_days
        return self.nominal_retention_max_days

    def in_force(self, at: datetime) -> bool:
        """Whether ``valid_from <= at < valid_until``; with no end date, from ``valid_from`` on."""
        _aware(at)
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)
