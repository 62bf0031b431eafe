"""The auditors' retention report: per agreement, which nominal blocks were erased where, and
which are overdue, from ledger entries alone (docs/retention.md).

For each ``alert_shared`` entry whose record (the origin's signed envelope, ciphertexts removed)
seals the nominal part to an agency other than the origin:

1. its retention is the governing agreement's (``domain.retention``), from the ``created_at``
   the origin signed, extended by ``nominal_retention_extended`` entries **whose actor agency is
   the alert's origin agency**, within the agreement's maximum (any other is ignored, and
   listed as ``refused_extensions``);
2. its recipient nodes are the actors of its ``alert_delivered`` entries whose agency received
   the nominal part;
3. a recipient node is ``erased`` when a ``nominal_erased`` entry by that node names the alert;
   else ``overdue`` once the retention ended (at ``at``); else still retained.

The entries are read as stored (``LedgerReads.entries``), each one's fields a function of the
signed record it carries: ``ledger verify`` proves the same entries against signed checkpoints.
Agreements are the directory's current ones; an agreement changed since keeps its new terms.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from blo_exchange.crypto.canonical import b64u_decode, parse_canonical_json
from blo_exchange.domain.directory import Agreement
from blo_exchange.domain.ids import format_time, parse_time
from blo_exchange.domain.ledger import LedgerEntryType
from blo_exchange.domain.retention import expiry_day, governing_retention
from blo_exchange.ledger.entries import parse_leaf_input
from blo_exchange.ledger.ports import EntryFilter, LedgerReads
from blo_exchange.services.ports import Directory

__all__ = ["RetentionAudit", "retention_report"]

_PAGE = 1000
_TYPES = (
    LedgerEntryType.ALERT_SHARED,
    LedgerEntryType.ALERT_DELIVERED,
    LedgerEntryType.NOMINAL_ERASED,
    LedgerEntryType.NOMINAL_RETENTION_EXTENDED,
)


@dataclass
class _Alert:
    origin_agency: str
    created_at: datetime
    agreement_ids: list[str]
    nominal_agencies: set[str]
    delivered: dict[str, str] = field(default_factory=dict)  # node -> agency
    extensions: list[datetime] = field(default_factory=list)


def _nominal_agencies(record: str | None, origin: str) -> set[str]:
    if record is None:
        return set()
    try:
        document = parse_canonical_json(b64u_decode(record))
        return {
            str(e["agency"])
            for e in document["recipients"]
            if "nominal" in e["parts"] and e["agency"] != origin
        }
    except (ValueError, KeyError, TypeError):
        return set()


def retention_report(
    entries: Iterable[Mapping[str, Any]], agreements: Iterable[Agreement], *, at: datetime
) -> dict[str, Any]:
    """Steps 1-3 of the module docstring over parsed entries (``parse_leaf_input`` fields)."""
    alerts: dict[str, _Alert] = {}
    erasures: list[Mapping[str, Any]] = []
    extensions: list[Mapping[str, Any]] = []
    delivered: list[Mapping[str, Any]] = []
    for entry in entries:
        kind = entry.get("type")
        if kind == LedgerEntryType.ALERT_SHARED:
            origin = str(entry["actor_agency"])
            readers = _nominal_agencies(entry.get("record"), origin)
            if readers:
                alerts[str(entry["alert_id"])] = _Alert(
                    origin_agency=origin,
                    created_at=parse_time(str(entry["occurred_at"])),
                    agreement_ids=[str(a) for a in entry.get("agreement_ids") or []],
                    nominal_agencies=readers,
                )
        elif kind == LedgerEntryType.ALERT_DELIVERED:
            delivered.append(entry)
        elif kind == LedgerEntryType.NOMINAL_ERASED:
            erasures.append(entry)
        elif kind == LedgerEntryType.NOMINAL_RETENTION_EXTENDED:
            extensions.append(entry)
    for entry in delivered:
        alert = alerts.get(str(entry.get("alert_id")))
        if alert is not None and entry.get("actor_agency") in alert.nominal_agencies:
            alert.delivered[str(entry["actor_node"])] = str(entry["actor_agency"])
    refused: list[dict[str, Any]] = []
    for entry in extensions:
        alert = alerts.get(str(entry.get("alert_id")))
        if alert is not None and entry.get("actor_agency") == alert.origin_agency:
            alert.extensions.append(parse_time(str((entry.get("detail") or {})["until"])))
        else:
            refused.append(_who(entry))

    known = list(agreements)
    report: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"erased": [], "overdue": [], "retained": 0}
    )
    erased_by = {(str(e.get("alert_id")), str(e.get("actor_node"))): e for e in erasures}
    for alert_id, alert in sorted(alerts.items()):
        retention = governing_retention(known, alert.agreement_ids, alert.created_at)
        if retention is None:
            continue
        ends = retention.expires_at
        for until in alert.extensions:
            if ends < expiry_day(until, 0) <= retention.max_until:
                ends = expiry_day(until, 0)
        section = report[retention.agreement_id]
        for node, agency in sorted(alert.delivered.items()):
            erasure = erased_by.pop((alert_id, node), None)
            if erasure is not None:
                section["erased"].append(_erased(erasure))
            elif at >= ends:
                section["overdue"].append(
                    {
                        "alert_id": alert_id,
                        "node": node,
                        "agency": agency,
                        "expired_at": format_time(ends),
                    }
                )
            else:
                section["retained"] += 1
    for erasure in erased_by.values():  # erased where no delivery was recorded (yet)
        agreement = str((erasure.get("detail") or {}).get("agreement_id", "unknown"))
        report[agreement]["erased"].append(_erased(erasure))
    return {
        "at": format_time(at),
        "agreements": [{"agreement_id": k, **v} for k, v in sorted(report.items())],
        "refused_extensions": refused,
    }


def _erased(entry: Mapping[str, Any]) -> dict[str, Any]:
    detail = entry.get("detail") or {}
    return {
        **_who(entry),
        "erased_at": detail.get("erased_at", entry.get("occurred_at")),
        "ledger_index": entry.get("index"),
    }


def _who(entry: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "alert_id": entry.get("alert_id"),
        "node": entry.get("actor_node"),
        "agency": entry.get("actor_agency"),
    }


class RetentionAudit:
    """The report over the node's copy of the ledger and its directory's agreements."""

    def __init__(
        self, *, store: LedgerReads, directory: Directory, clock: Callable[[], datetime]
    ) -> None:
        self._store = store
        self._directory = directory
        self._clock = clock

    async def report(self, *, at: datetime | None = None) -> dict[str, Any]:
        entries: list[dict[str, Any]] = []
        for kind in _TYPES:
            after = -1
            while True:
                rows = await self._store.entries(
                    EntryFilter(type=kind.value), after=after, limit=_PAGE
                )
                entries.extend({"index": i, **parse_leaf_input(leaf)} for i, leaf in rows)
                if len(rows) < _PAGE:
                    break
                after = rows[-1][0]
        return retention_report(
            entries, await self._directory.agreements(), at=self._clock() if at is None else at
        )
