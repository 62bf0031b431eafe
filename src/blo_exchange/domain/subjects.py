"""NATS subject names [contract, docs/contracts/subjects.md]: alerts, receipts, ledger checkpoints
and queries.

Alerts travel in two lanes: live alerts on ``blo.v1.alerts.<PAIR>.<kind>``, bulk ones (the items
of a ``:batch`` post) on the same subject with a ``.bulk`` token after it. The lane is a delivery
priority, not part of what is signed: each lane has its own consumer, so a bulk flood queues
behind its own kind and never in front of a live alert.

Plain string rules, so the domain owns them; the NATS adapter and the services both use them.
"""

from __future__ import annotations

from blo_exchange.domain.alerts import AlertKind
from blo_exchange.domain.ids import parse_border_pair

__all__ = [
    "ALERTS_PREFIX",
    "BULK_TOKEN",
    "CHECKPOINTS_SUBJECT",
    "DIRECTORY_SUBJECT",
    "LEDGER_QUERIES_SUBJECT",
    "RECEIPTS_PREFIX",
    "alert_subject",
    "alert_subjects_for_pairs",
    "parse_alert_subject",
    "parse_receipt_subject",
    "receipt_subject",
]

ALERTS_PREFIX = "blo.v1.alerts"
RECEIPTS_PREFIX = "blo.v1.receipts"
CHECKPOINTS_SUBJECT = "blo.v1.ledger.checkpoints"
LEDGER_QUERIES_SUBJECT = "blo.v1.ledger.queries"
DIRECTORY_SUBJECT = "blo.v1.directory.statements"
"""Signed directory statements (docs/statements.md), for every node and ledger writer to copy."""
BULK_TOKEN = "bulk"  # noqa: S105  # nosec B105: a subject token
"""The last token of a bulk-lane alert subject."""


def alert_subject(border_pair: str, kind: str, *, bulk: bool = False) -> str:
    subject = f"{ALERTS_PREFIX}.{parse_border_pair(border_pair)}.{AlertKind(kind).value}"
    return f"{subject}.{BULK_TOKEN}" if bulk else subject


def receipt_subject(border_pair: str) -> str:
    return f"{RECEIPTS_PREFIX}.{parse_border_pair(border_pair)}"


def alert_subjects_for_pairs(
    border_pairs: list[str] | tuple[str, ...], *, bulk: bool = False
) -> list[str]:
    """Filter subjects of a consumer that serves these border pairs (every kind), of one lane."""
    tail = f".*.{BULK_TOKEN}" if bulk else ".*"
    pairs = sorted(set(border_pairs))
    return [f"{ALERTS_PREFIX}.{parse_border_pair(pair)}{tail}" for pair in pairs]


def parse_alert_subject(subject: str) -> tuple[str, str]:
    """``blo.v1.alerts.KG-TJ.seizure`` (or ``….seizure.bulk``) → ``("KG-TJ", "seizure")``;
    ValueError otherwise."""
    prefix = ALERTS_PREFIX + "."
    if not subject.startswith(prefix):
        raise ValueError(f"not an alert subject: {subject!r}")
    rest = subject[len(prefix) :].split(".")
    if len(rest) == 3 and rest[2] == BULK_TOKEN:
        rest = rest[:2]
    if len(rest) != 2:
        raise ValueError(f"not an alert subject: {subject!r}")
    return parse_border_pair(rest[0]), AlertKind(rest[1]).value


def parse_receipt_subject(subject: str) -> str:
    prefix = RECEIPTS_PREFIX + "."
    if not subject.startswith(prefix) or "." in subject[len(prefix) :]:
        raise ValueError(f"not a receipt subject: {subject!r}")
    return parse_border_pair(subject[len(prefix) :])
