"""The officer's alert form: flat HTML form fields to a submission document, and validation errors
back to the fields they concern.

Field names are the JSON paths of the submission, dotted, with the kind's case fields under the
kind (``seizure.case.items.0.quantity``, ``risk.case.subject``) so that one page can hold both
forms and pydantic's error locations (which begin with the discriminator tag) map straight back
to a field. Empty fields are left out, and so are blocks left wholly empty (a form without
conveyance sends none).

The form is kinder than the API in one way only: a quantity written with a decimal comma
(``12,5``, as officers write it in Russian and Central Asian locales) becomes ``12.5`` here, so the
submission still carries the API's dot-only decimal string.

Not here: validation itself (``domain.alerts``, unchanged, the same as for the JSON API).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

from pydantic import ValidationError

from blo_exchange.web.messages import Catalogue

__all__ = [
    "KINDS",
    "field_anchor",
    "field_errors",
    "field_label",
    "open_sections",
    "submission_from_form",
]

KINDS: Final = ("seizure", "risk")
_COMMON: Final = ("border_pair", "crossing_point", "tlp", "handling.", "grading.", "nominal.")
_LOCAL_TIMES: Final = ("seizure.case.observed_at", "risk.case.valid_until")
_INTEGERS: Final = re.compile(r"seizure\.case\.items\.\d+\.package_count")
_QUANTITY: Final = re.compile(r"seizure\.case\.items\.\d+\.quantity")
_DECIMAL_COMMA: Final = re.compile(r"(\d+),(\d+)")
_DIGIT_GROUPS: Final = re.compile(r"(?<=\d)[ \u00a0\u202f](?=\d{3}\b)")  # "1 250,5"
_COUNTRIES: Final = re.compile(
    r".*\.(registration_country|origin|destination|nationality|country)$"
)
_LOCAL_TIME_RE: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")


def _offset(tz_offset_minutes: str | None) -> str:
    """``Date.getTimezoneOffset()`` (UTC minus local, in minutes) as an RFC 3339 offset."""
    try:
        minutes = -int(tz_offset_minutes or "0")
    except ValueError:
        minutes = 0
    if not -14 * 60 <= minutes <= 14 * 60:
        minutes = 0
    if minutes == 0:
        return "Z"
    sign = "+" if minutes > 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _value(name: str, raw: str, offset: str) -> Any:
    value = raw.strip()
    if name in _LOCAL_TIMES and _LOCAL_TIME_RE.fullmatch(value):
        return (value if value.count(":") == 2 else value + ":00") + offset
    if _QUANTITY.fullmatch(name):
        return _decimal_comma(value)
    if _INTEGERS.fullmatch(name) and value.isdigit():
        return int(value)
    if _COUNTRIES.fullmatch(name):
        return value.upper()
    if name == "risk.case.indicators":
        return [line.strip() for line in value.splitlines() if line.strip()]
    return value


def _decimal_comma(value: str) -> str:
    """``12,5`` → ``12.5`` and ``1 250,5`` → ``1250.5``; anything else is left for validation."""
    grouped = _DIGIT_GROUPS.sub("", value)
    match = _DECIMAL_COMMA.fullmatch(grouped)
    return f"{match[1]}.{match[2]}" if match else grouped


def _nest(pairs: Iterable[tuple[list[str], Any]]) -> dict[str, Any]:
    root: dict[str, Any] = {}
    for path, value in pairs:
        node = root
        for part in path[:-1]:
            node = node.setdefault(part, {})
        node[path[-1]] = value
    return root


def _prune(value: Any) -> Any:
    """Drop empty strings, lists and blocks; turn ``{"0": …, "1": …}`` into lists."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        pruned = {k: v for k, v in pruned.items() if v not in ("", None, [], {})}
        if pruned and all(k.isdigit() for k in pruned):
            return [pruned[k] for k in sorted(pruned, key=int)]
        return pruned
    return value


def submission_from_form(form: Mapping[str, str]) -> dict[str, Any]:
    """The submission document a form describes (still to be validated)."""
    kind = form.get("kind", "")
    offset = _offset(form.get("tz_offset"))
    pairs: list[tuple[list[str], Any]] = []
    for name, raw in form.items():
        if name.startswith(_COMMON):
            pairs.append((name.split("."), _value(name, raw, offset)))
        elif kind in KINDS and name.startswith(f"{kind}.case."):
            pairs.append((name.split(".")[1:], _value(name, raw, offset)))
    document: dict[str, Any] = _prune(_nest(pairs))
    document["kind"] = kind
    case = document.get("case", {})
    if "text" not in case.get("narrative", {"text": ""}):
        del case["narrative"]  # the language alone (prefilled) is no narrative
    handling = document.get("handling", {})
    if handling.get("scheme") in (None, "none"):
        document["handling"] = {"scheme": "none"}
    if not document.get("grading", {}).get("scheme"):
        document.pop("grading", None)
    return document


_MESSAGE_KEYS: Final[Mapping[str, str]] = {
    "missing": "validation.missing",
    "enum": "validation.choice",
    "literal_error": "validation.choice",
    "union_tag_invalid": "validation.choice",
    "string_too_long": "validation.too_long",
    "too_long": "validation.too_long",
    "string_too_short": "validation.too_short",
    "too_short": "validation.too_short",
    "string_pattern_mismatch": "validation.format",
    "decimal_parsing": "validation.decimal",
    "int_type": "validation.number",
    "int_parsing": "validation.number",
    "greater_than_equal": "validation.number",
    "datetime_type": "validation.date",
    "datetime_parsing": "validation.date",
    "datetime_from_date_parsing": "validation.date",
    "date_parsing": "validation.date",
    "date_from_datetime_parsing": "validation.date",
}


def _field(loc: tuple[int | str, ...], kind: str) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] == kind:
        parts = parts[1:]
        if parts[:1] == ["case"]:
            parts = [kind, *parts]
    return ".".join(parts)


def field_errors(exc: ValidationError, kind: str, t: Catalogue) -> dict[str, str]:
    """Field name (``""`` for the whole form) to the first message about it, in ``t``'s language."""
    if kind not in KINDS:
        return {"kind": t("validation.choice")}
    errors: dict[str, str] = {}
    for error in exc.errors():
        name = _field(tuple(error["loc"]), kind)
        key = _MESSAGE_KEYS.get(error["type"], "validation.other")
        if _QUANTITY.fullmatch(name) and key != "validation.missing":
            key = "validation.decimal"  # the domain's message is English and names the API form
        if error["type"] == "missing" and name in _REQUIRED_INSIDE:
            # A whole block left empty: say so at the fields inside it, where they are typed.
            for field in _REQUIRED_INSIDE[name]:
                errors.setdefault(field, t("validation.missing"))
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        errors.setdefault(name, t(key, message=message))
    return errors


_ITEM_REQUIRED: Final = tuple(
    f"seizure.case.items.0.{f}" for f in ("substance", "form", "quantity", "unit")
)
_REQUIRED_INSIDE: Final[Mapping[str, tuple[str, ...]]] = {
    "seizure.case.items": _ITEM_REQUIRED,
    "seizure.case": (
        "seizure.case.observed_at",
        *_ITEM_REQUIRED,
        "seizure.case.detection_method",
    ),
    "risk.case": ("risk.case.subject", "risk.case.indicators"),
}

# Error names that are groups (a block, a list, a radio set) and the field a summary link to
# them should land on: the group's first field.
_GROUP_FIRST: Final[Mapping[str, str]] = {
    "kind": "kind-seizure",
    "tlp": "tlp-1",
    "handling": "handling.scheme",
    "grading": "grading.scheme",
    "nominal": "nominal.persons.0.role",
    "nominal.persons": "nominal.persons.0.role",
    "seizure.case": "seizure.case.observed_at",
    "seizure.case.items": "seizure.case.items.0.substance",
    "seizure.case.concealment": "seizure.case.concealment.method",
    "seizure.case.conveyance": "seizure.case.conveyance.mode",
    "seizure.case.route": "seizure.case.route.origin",
    "seizure.case.narrative": "seizure.case.narrative.text",
    "risk.case": "risk.case.subject",
    "risk.case.targets": "risk.case.targets.0.type",
    "risk.case.narrative": "risk.case.narrative.text",
}
_GROUP_ROW: Final = re.compile(
    r"(seizure\.case\.items|risk\.case\.targets|nominal\.persons)\.(\d+)"
)
_ROW_FIRST: Final[Mapping[str, str]] = {
    "seizure.case.items": "substance",
    "risk.case.targets": "type",
    "nominal.persons": "role",
}


def field_anchor(name: str, fields: Iterable[str]) -> str:
    """The id of the field a summary link for error ``name`` lands on.

    ``fields`` are the names the form holds. A name the form has no field for (a group, or a
    part of the API document the form does not offer) lands on the nearest enclosing group's
    first field, and at worst on the form itself.
    """
    known = set(fields)
    path = name
    while path:
        if path in known:
            return "f-" + path.replace(".", "-")
        if path in _GROUP_FIRST:
            first = _GROUP_FIRST[path]
            if first in known or first in ("kind-seizure", "tlp-1"):
                return "f-" + first.replace(".", "-")
        row = _GROUP_ROW.fullmatch(path)
        if row and f"{path}.{_ROW_FIRST[row[1]]}" in known:
            return "f-" + f"{path}.{_ROW_FIRST[row[1]]}".replace(".", "-")
        path = path.rpartition(".")[0]
    return "alert-form"


# The optional parts of the form, folded away until opened, and the field names in each.
SECTIONS: Final[Mapping[str, tuple[str, ...]]] = {
    "concealment": ("seizure.case.concealment.",),
    "conveyance": ("seizure.case.conveyance.",),
    "route": ("seizure.case.route.",),
    "seizure-narrative": ("seizure.case.narrative.text",),
    "risk-more": (
        "risk.case.modus_operandi",
        "risk.case.targets.",
        "risk.case.valid_until",
        "risk.case.recommended_action",
    ),
    "risk-narrative": ("risk.case.narrative.text",),
    "handling": ("handling",),
    "grading": ("grading",),
    "nominal": ("nominal",),
}
_DEFAULTS: Final[Mapping[str, str]] = {"handling.scheme": "none"}


def open_sections(values: Mapping[str, str], errors: Mapping[str, str]) -> set[str]:
    """The optional sections to show open: those holding a value the reader gave, or an error."""
    opened = set()
    for section, prefixes in SECTIONS.items():
        filled = any(
            name.startswith(prefixes) and value.strip() and _DEFAULTS.get(name) != value
            for name, value in values.items()
        )
        if filled or any(name.startswith(prefixes) for name in errors):
            opened.add(section)
    return opened


_LABEL_KEYS: Final[Mapping[str, str]] = {
    "kind": "officer.kind",
    "crossing_point": "officer.crossing_point",
    "border_pair": "officer.border_pair",
    "tlp": "officer.tlp",
    "handling": "officer.handling",
    "handling.scheme": "officer.handling_scheme",
    "handling.code": "officer.handling_code",
    "handling.conditions": "officer.handling_conditions",
    "grading": "officer.grading",
    "grading.scheme": "officer.grading_scheme",
    "grading.source": "officer.grading_source",
    "grading.information": "officer.grading_information",
    "nominal": "officer.nominal",
    "concealment.method": "officer.concealment_method",
    "concealment.place": "officer.concealment_place",
    "conveyance.mode": "officer.conveyance_mode",
    "route.origin": "officer.route_origin",
    "route.departure": "officer.route_departure",
    "route.destination": "officer.route_destination",
    "narrative.text": "officer.narrative_text",
    "narrative.lang": "officer.narrative_lang",
    "document.type": "officer.document_type",
    "document.number": "officer.document_number",
    "type": "officer.target_type",
    "value": "officer.target_value",
    "role": "officer.person_role",
    "name": "officer.person_name",
    "birth_date": "officer.person_birth_date",
    "nationality": "officer.person_nationality",
}


def field_label(name: str, t: Catalogue) -> str:
    """The label a reader saw for field ``name`` (its dotted path), for the error summary."""
    if not name:
        return ""
    item = re.fullmatch(r"seizure\.case\.items\.(\d+)", name)
    if item:
        return t("officer.item", n=int(item.group(1)) + 1)
    parts = name.split(".")
    for size in (2, 1):
        key = _LABEL_KEYS.get(".".join(parts[-size:])) if len(parts) >= size else None
        if key is None and size == 1:
            key = f"officer.{parts[-1]}"
        if key is not None and t.has(key):
            return t(key)
    return name
