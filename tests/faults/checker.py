"""A Jepsen-style set checker for the promise "a 202 means delivered once and ledgered once".

The history is what the terminal saw: for each Idempotency-Key it used, the ``alert_id`` of the
202 it finally got (or nothing: refused, or given up). The observation is what the system holds
once it settled: the recipient's feed (alert id and the key the alert's narrative carries) and
the ``alert_shared`` ledger entries. Pure functions; no I/O.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Verdict", "check"]


@dataclass(frozen=True)
class Verdict:
    acknowledged: int
    delivered: int
    in_ledger: int
    lost: frozenset[str]  # acknowledged alert ids missing from the recipient's feed
    lost_in_ledger: frozenset[str]  # acknowledged alert ids without an alert_shared entry
    duplicates: tuple[str, ...]  # one line per duplicate found
    unacknowledged_delivered: int = 0  # delivered though the terminal never saw the 202: allowed
    notes: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return not self.lost and not self.lost_in_ledger and not self.duplicates

    def summary(self) -> dict[str, object]:
        return {
            "acknowledged": self.acknowledged,
            "delivered": self.delivered,
            "in_ledger": self.in_ledger,
            "lost": len(self.lost),
            "lost_in_ledger": len(self.lost_in_ledger),
            "duplicated": len(self.duplicates),
            "unacknowledged_delivered": self.unacknowledged_delivered,
        }


def check(
    acknowledged: Mapping[str, str],
    feed: Sequence[tuple[str, str]],
    shared: Sequence[str],
) -> Verdict:
    """``acknowledged``: key → alert id of its 202. ``feed``: (alert id, key) per feed item.
    ``shared``: the alert id of every ``alert_shared`` entry (entries of other alerts may be in).
    """
    acked_ids = set(acknowledged.values())
    feed_ids = Counter(alert_id for alert_id, _ in feed)
    feed_keys: dict[str, set[str]] = {}
    for alert_id, key in feed:
        feed_keys.setdefault(key, set()).add(alert_id)
    ours = acked_ids | set(feed_ids)
    shared_ids = Counter(alert_id for alert_id in shared if alert_id in ours)

    duplicates: list[str] = []
    # (1) The same alert twice in the recipient's feed.
    duplicates += [f"feed: {a} x{n}" for a, n in sorted(feed_ids.items()) if n > 1]
    # (2) One terminal request (one key) that became two alerts: the retry was not deduplicated.
    duplicates += [f"feed: key {k} as {len(v)} alerts" for k, v in feed_keys.items() if len(v) > 1]
    # (3) Two alert_shared entries for one alert, or for one key.
    duplicates += [f"ledger: {a} x{n}" for a, n in sorted(shared_ids.items()) if n > 1]
    key_of = {alert_id: key for alert_id, key in feed} | {a: k for k, a in acknowledged.items()}
    shared_per_key = Counter(key_of[a] for a in shared_ids if a in key_of)
    duplicates += [
        f"ledger: key {k} as {n} alerts" for k, n in sorted(shared_per_key.items()) if n > 1
    ]
    # (4) The 202 named one alert and another one was delivered for the same key.
    for key, alert_id in sorted(acknowledged.items()):
        others = feed_keys.get(key, set()) - {alert_id}
        if others:
            duplicates.append(f"key {key}: acknowledged {alert_id}, delivered {sorted(others)}")
    acked_keys = set(acknowledged)
    return Verdict(
        acknowledged=len(acked_ids),
        delivered=len(acked_ids & set(feed_ids)),
        in_ledger=len(acked_ids & set(shared_ids)),
        lost=frozenset(acked_ids - set(feed_ids)),
        lost_in_ledger=frozenset(acked_ids - set(shared_ids)),
        duplicates=tuple(dict.fromkeys(duplicates)),
        unacknowledged_delivered=sum(1 for k in feed_keys if k not in acked_keys),
    )
