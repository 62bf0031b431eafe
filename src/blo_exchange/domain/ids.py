"""Identifiers and timestamps: countries, border pairs, agencies, nodes, crossing points, alert ids.

Every identifier that crosses a border (in a request body, an envelope header, a NATS subject or a
ledger entry) is defined here once, as a plain ``parse_*`` function that raises ``ValueError`` and
as a pydantic ``Annotated`` type built on it. Identifiers are accepted only in their canonical form;
nothing is silently upper-cased, sorted or trimmed, because the same string is signed, used as a
NATS subject token and stored in the ledger.

Time is here too because alert ids carry it: ``new_alert_id`` is a UUIDv7 (RFC 9562) whose first
48 bits are the creation time in unix milliseconds, and every timestamp on the wire is RFC 3339 UTC
with millisecond precision (``2026-11-28T06:40:00.000Z``). Time and randomness are parameters, so
tests are exact; this module never reads the clock except in :func:`utc_now`.

Not here: what a border pair or an agency *may* do (see ``policy``), and which ones exist (the
directory lives in Postgres).
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Annotated, Any, Final

from pydantic import AfterValidator, BeforeValidator, PlainSerializer, WithJsonSchema

__all__ = [
    "COUNTRIES",
    "AgencyId",
    "AlertId",
    "BorderPair",
    "CountryCode",
    "CrossingPointId",
    "NodeId",
    "UtcTimestamp",
    "alert_id_time",
    "border_pair_of",
    "countries_of",
    "country_of_crossing_point",
    "format_time",
    "new_alert_id",
    "parse_agency_id",
    "parse_alert_id",
    "parse_border_pair",
    "parse_country_code",
    "parse_crossing_point",
    "parse_node_id",
    "parse_time",
    "utc_now",
]

# ISO 3166-1 alpha-2, officially assigned codes only (249). User-assigned codes such as XK and
# exceptionally reserved ones such as UK or EU are deliberately absent.
_COUNTRY_TABLE: Final = """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ
    BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT BV BW BY BZ
    CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ
    DE DJ DK DM DO DZ
    EC EE EG EH ER ES ET
    FI FJ FK FM FO FR
    GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY
    HK HM HN HR HT HU
    ID IE IL IM IN IO IQ IR IS IT
    JE JM JO JP
    KE KG KH KI KM KN KP KR KW KY KZ
    LA LB LC LI LK LR LS LT LU LV LY
    MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ
    NA NC NE NF NG NI NL NO NP NR NU NZ
    OM
    PA PE PF PG PH PK PL PM PN PR PS PT PW PY
    QA
    RE RO RS RU RW
    SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ
    TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ
    UA UG UM US UY UZ
    VA VC VE VG VI VN VU
    WF WS
    YE YT
    ZA ZM ZW
"""
COUNTRIES: Final[frozenset[str]] = frozenset(_COUNTRY_TABLE.split())

# `[0-9]` and `[a-z]`, never `\d` or `\w`: those match non-ASCII digits and letters.
_COUNTRY_RE: Final = re.compile(r"[A-Z]{2}")
_SLUG_PATTERN: Final = r"^[a-z0-9]+(-[a-z0-9]+)*$"
_SLUG_RE: Final = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_AGENCY_PATTERN: Final = r"^[a-z]{2}-[a-z0-9]+(-[a-z0-9]+)*$"
_AGENCY_RE: Final = re.compile(r"[a-z]{2}-[a-z0-9]+(?:-[a-z0-9]+)*")
_CROSSING_PATTERN: Final = r"^[A-Z]{2}-[A-Z0-9]+(-[A-Z0-9]+)*$"
_CROSSING_RE: Final = re.compile(r"[A-Z]{2}-[A-Z0-9]+(?:-[A-Z0-9]+)*")
_ALERT_ID_PATTERN: Final = r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
_ALERT_ID_RE: Final = re.compile(_ALERT_ID_PATTERN[1:-1])
_MAX_ID_LENGTH: Final = 64


def _require_str(value: object, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a string")
    return value


def parse_country_code(value: str) -> str:
    """Return ``value`` if it is an assigned ISO 3166-1 alpha-2 code in upper case."""
    _require_str(value, "country code")
    if _COUNTRY_RE.fullmatch(value) is None:
        raise ValueError(
            f"country must be two upper-case letters (ISO 3166-1 alpha-2), got {value!r}"
        )
    if value not in COUNTRIES:
        raise ValueError(f"{value!r} is not an assigned ISO 3166-1 alpha-2 country code")
    return value


def parse_border_pair(value: str) -> str:
    """Return ``value`` if it is a canonical border pair: two distinct countries, sorted, ``-``."""
    _require_str(value, "border pair")
    parts = value.split("-")
    if len(parts) != 2 or not all(_COUNTRY_RE.fullmatch(p) for p in parts):
        hint = ""
        if len(parts) == 2 and all(_COUNTRY_RE.fullmatch(p.upper()) for p in parts):
            hint = f" (did you mean {'-'.join(sorted(p.upper() for p in parts))!r}?)"
        raise ValueError(
            "border pair must be two upper-case ISO 3166-1 alpha-2 codes, sorted and joined "
            f"by '-', e.g. 'KG-TJ'; got {value!r}{hint}"
        )
    first, second = parts
    for code in parts:
        parse_country_code(code)
    if first == second:
        raise ValueError(f"border pair {value!r} names the same country twice")
    if first > second:
        raise ValueError(
            f"border pair {value!r} is not in canonical order; write it as '{second}-{first}'"
        )
    return value


def border_pair_of(a: str, b: str) -> str:
    """The canonical border pair of two countries, in either order: ``("TJ", "KG") -> "KG-TJ"``."""
    return parse_border_pair("-".join(sorted((parse_country_code(a), parse_country_code(b)))))


def countries_of(pair: str) -> tuple[str, str]:
    """The two countries of a canonical border pair, in order: ``"KG-TJ" -> ("KG", "TJ")``."""
    first, second = parse_border_pair(pair).split("-")
    return first, second


def _check_length(value: str, what: str) -> None:
    if len(value) > _MAX_ID_LENGTH:
        raise ValueError(f"{what} must be at most {_MAX_ID_LENGTH} characters")


def parse_agency_id(value: str) -> str:
    """Return ``value`` if it is an agency id: ``<country in lower case>-<slug>``."""
    _require_str(value, "agency id")
    _check_length(value, "agency id")
    if _AGENCY_RE.fullmatch(value) is None:
        raise ValueError(
            "agency id must be a lower-case country code, '-' and a lower-case slug, "
            f"e.g. 'kg-border-service'; got {value!r}"
        )
    if value[:2].upper() not in COUNTRIES:
        raise ValueError(f"agency id {value!r} does not start with an assigned country code")
    return value


def parse_node_id(value: str) -> str:
    """Return ``value`` if it is a node id: a lower-case slug such as ``blo-karamyk-kg``."""
    _require_str(value, "node id")
    _check_length(value, "node id")
    if _SLUG_RE.fullmatch(value) is None:
        raise ValueError(
            f"node id must be a lower-case slug such as 'blo-karamyk-kg'; got {value!r}"
        )
    return value


def parse_crossing_point(value: str) -> str:
    """Return ``value`` if it is a crossing point id: ``<COUNTRY>-<NAME>`` in upper case."""
    _require_str(value, "crossing point")
    _check_length(value, "crossing point")
    if _CROSSING_RE.fullmatch(value) is None:
        raise ValueError(
            "crossing point must be a country code, '-' and an upper-case name, "
            f"e.g. 'KG-KARAMYK'; got {value!r}"
        )
    if value[:2] not in COUNTRIES:
        raise ValueError(f"crossing point {value!r} does not start with an assigned country code")
    return value


def country_of_crossing_point(crossing_point: str) -> str:
    """The country a crossing point lies in: ``"KG-KARAMYK" -> "KG"``."""
    return parse_crossing_point(crossing_point)[:2]


def parse_alert_id(value: str) -> str:
    """Return ``value`` if it is a lower-case canonical UUID of version 7 (RFC 9562 variant)."""
    _require_str(value, "alert id")
    if _ALERT_ID_RE.fullmatch(value) is None:
        raise ValueError(f"alert id must be a lower-case canonical UUIDv7; got {value!r}")
    return value


def _id_schema(pattern: str, max_length: int | None, example: str) -> WithJsonSchema:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern, "examples": [example]}
    if max_length is not None:
        schema["maxLength"] = max_length
    return WithJsonSchema(schema)


CountryCode = Annotated[str, AfterValidator(parse_country_code), _id_schema("^[A-Z]{2}$", 2, "KG")]
BorderPair = Annotated[
    str, AfterValidator(parse_border_pair), _id_schema("^[A-Z]{2}-[A-Z]{2}$", 5, "KG-TJ")
]
AgencyId = Annotated[
    str,
    AfterValidator(parse_agency_id),
    _id_schema(_AGENCY_PATTERN, _MAX_ID_LENGTH, "kg-border-service"),
]
NodeId = Annotated[
    str, AfterValidator(parse_node_id), _id_schema(_SLUG_PATTERN, _MAX_ID_LENGTH, "blo-karamyk-kg")
]
CrossingPointId = Annotated[
    str,
    AfterValidator(parse_crossing_point),
    _id_schema(_CROSSING_PATTERN, _MAX_ID_LENGTH, "KG-KARAMYK"),
]
AlertId = Annotated[
    str,
    AfterValidator(parse_alert_id),
    _id_schema(_ALERT_ID_PATTERN, 36, "019ac95b-6a00-7c3e-9d2b-5f1e0a4c7b21"),
]


# --- time -----------------------------------------------------------------------------------

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})[Tt]([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]{1,9}))?([Zz]|[+-][0-9]{2}:[0-9]{2})?"
)


def utc_now() -> datetime:
    """The current time, aware, in UTC. The only place in the domain that reads the clock."""
    return datetime.now(UTC)


def _require_aware(dt: datetime, what: str = "datetime") -> datetime:
    if not isinstance(dt, datetime):
        raise TypeError(f"{what} must be a datetime")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware; naive datetimes are ambiguous")
    return dt


def format_time(dt: datetime) -> str:
    """RFC 3339 in UTC to the millisecond (truncated, not rounded): ``2026-11-28T06:40:00.000Z``."""
    u = _require_aware(dt).astimezone(UTC)
    return (
        f"{u.year:04d}-{u.month:02d}-{u.day:02d}T{u.hour:02d}:{u.minute:02d}:{u.second:02d}"
        f".{u.microsecond // 1000:03d}Z"
    )


def parse_time(s: str) -> datetime:
    """Parse an RFC 3339 date-time that carries an offset; return it as an aware UTC datetime.

    A missing offset is an error (the sender's local time is unknowable). Fractions beyond
    microseconds are truncated; leap seconds (``:60``) are not representable and are rejected.
    """
    _require_str(s, "timestamp")
    match = _RFC3339_RE.fullmatch(s)
    if match is None:
        raise ValueError(f"timestamp must be RFC 3339, e.g. '2026-11-28T06:40:00.000Z'; got {s!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    if offset is None:
        raise ValueError(f"timestamp {s!r} has no UTC offset; add 'Z' or '+hh:mm'")
    if offset in ("Z", "z"):
        tz = UTC
    else:
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"timestamp {s!r} has an invalid UTC offset")
        delta = timedelta(hours=hours, minutes=minutes)
        tz = timezone(-delta if offset[0] == "-" else delta)
    micro = int((fraction or "").ljust(6, "0")[:6])
    try:
        dt = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz
        )
    except ValueError as exc:
        raise ValueError(f"timestamp {s!r} is not a valid date-time: {exc}") from None
    return _in_utc(dt, s)


def _in_utc(dt: datetime, shown: object) -> datetime:
    # Near year 1 or 9999 an offset can carry the instant out of datetime's range.
    try:
        return dt.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"timestamp {shown!r} is out of range in UTC") from None


def _to_utc(value: object) -> datetime:
    if isinstance(value, datetime):
        return _in_utc(_require_aware(value, "timestamp"), value)
    if isinstance(value, str):
        return parse_time(value)
    raise ValueError("timestamp must be an RFC 3339 string with a UTC offset")


UtcTimestamp = Annotated[
    datetime,
    BeforeValidator(_to_utc),
    PlainSerializer(format_time, return_type=str, when_used="json"),
]
"""An aware UTC datetime; from RFC 3339 text with an offset; to JSON as ``format_time`` does."""


# --- alert ids --------------------------------------------------------------------------------


def _unix_ms(dt: datetime) -> int:
    return (_require_aware(dt) - _EPOCH) // timedelta(milliseconds=1)


def new_alert_id(now: datetime, rng: Callable[[int], bytes] = os.urandom) -> str:
    """A UUIDv7 (RFC 9562 section 5.7): 48 bits of unix ms from ``now``, then 74 random bits.

    Deterministic for a fixed ``now`` and ``rng``. Ids made in the same millisecond are not
    ordered among themselves (no counter); the ledger, not the id, gives the total order.
    """
    ms = _unix_ms(now)
    if not 0 <= ms < 1 << 48:
        raise ValueError("time is outside the range of a UUIDv7")
    rand = rng(10)
    if len(rand) != 10:
        raise ValueError("rng must return exactly the number of bytes asked for")
    bits = int.from_bytes(rand, "big")
    rand_a = bits >> 68  # the top 12 of 80 random bits
    rand_b = bits & ((1 << 62) - 1)  # the bottom 62
    value = ms << 80 | 0x7 << 76 | rand_a << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def alert_id_time(alert_id: str) -> datetime:
    """The creation time (to the millisecond) carried in a UUIDv7 alert id."""
    ms = int(parse_alert_id(alert_id).replace("-", "")[:12], 16)
    return _EPOCH + timedelta(milliseconds=ms)
