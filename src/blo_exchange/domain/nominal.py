"""The nominal block of an alert: persons, companies and phone numbers (personal data).

It is kept apart from the case block so that it can be encrypted as its own envelope part, given
only to agencies whose agreement allows personal data (``Recipients.nominal_agencies``), and
redacted in transit while the rest still verifies. A nominal block that is present is never
empty: "no personal data" is said by leaving it out.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal, Self

from pydantic import BeforeValidator, Field, model_validator

from blo_exchange.domain._model import DomainModel
from blo_exchange.domain.ids import CountryCode
from blo_exchange.domain.vocab import PersonRole

__all__ = ["Company", "NominalBlock", "Person", "PersonDocument", "PhoneNumber"]


def _date_only(value: object) -> object:
    # pydantic's lax date also takes unix timestamps (numbers); a birth date is text or a date.
    if isinstance(value, date | str):
        return value
    raise ValueError("date must be an ISO 8601 date string such as '1981-04-12'")


_IsoDate = Annotated[date, BeforeValidator(_date_only)]

PhoneNumber = Annotated[str, Field(pattern=r"^\+[1-9][0-9]{6,14}$", examples=["+992900000000"])]
"""E.164: ``+``, country calling code and number, no spaces."""


class PersonDocument(DomainModel):
    type: Literal["passport", "id_card", "driving_licence", "other"]
    number: str = Field(min_length=1, max_length=64)
    country: CountryCode | None = None


class Person(DomainModel):
    role: PersonRole
    name: str = Field(min_length=1, max_length=200)
    birth_date: _IsoDate | None = None
    nationality: CountryCode | None = None
    document: PersonDocument | None = None


class Company(DomainModel):
    name: str = Field(min_length=1, max_length=200)
    country: CountryCode | None = None
    registration: str | None = Field(default=None, max_length=64)


class NominalBlock(DomainModel):
    persons: list[Person] = Field(default_factory=list, max_length=50)
    companies: list[Company] = Field(default_factory=list, max_length=50)
    phones: list[PhoneNumber] = Field(default_factory=list, max_length=50)

    @model_validator(mode="after")
    def _not_empty(self) -> Self:
        if not (self.persons or self.companies or self.phones):
            raise ValueError("a nominal block needs at least one person, company or phone; omit it")
        return self
