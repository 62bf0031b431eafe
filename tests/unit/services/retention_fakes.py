"""Fakes of the nominal lifecycle's ports: the retention store and the epoch keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from blo_exchange.services.retention import RetainedNominal

__all__ = ["FakeKeys", "FakeStore"]


@dataclass
class FakeStore:
    rows: dict[tuple[str, str], RetainedNominal] = field(default_factory=dict)

    def put(self, row: RetainedNominal) -> None:
        """A row as the SQL inbox would have stored it with its alert (a test's set-up)."""
        self.rows.setdefault((row.node_id, row.alert_id), row)

    async def get(self, node_id: str, alert_id: str) -> RetainedNominal | None:
        return self.rows.get((node_id, alert_id))

    async def many(self, node_id: str, alert_ids: Sequence[str]) -> dict[str, RetainedNominal]:
        return {a: r for (n, a), r in self.rows.items() if n == node_id and a in alert_ids}

    async def due(self, node_id: str, at: datetime) -> list[RetainedNominal]:
        return [
            r
            for r in self.rows.values()
            if r.node_id == node_id
            and r.role == "recipient"
            and r.erased_at is None
            and r.expires_at <= at
        ]

    async def expiring(self, node_id: str, before: datetime) -> list[RetainedNominal]:
        return [
            r
            for r in self.rows.values()
            if r.node_id == node_id and r.role == "origin" and r.expires_at < before
        ]

    async def update(self, row: RetainedNominal, *, if_sealed_on: date | None = None) -> bool:
        now = self.rows[(row.node_id, row.alert_id)]
        if if_sealed_on is not None and (
            now.erased_at is not None or now.sealed is None or now.sealed.day != if_sealed_on
        ):
            return False
        self.rows[(row.node_id, row.alert_id)] = row
        return True


@dataclass
class FakeKeys:
    keys: dict[date, bytes] = field(default_factory=dict)

    def get(self, day: date, *, create: bool) -> bytes | None:
        if create:
            self.keys.setdefault(day, bytes([len(self.keys) + 1]) * 32)
        return self.keys.get(day)

    def days(self) -> list[date]:
        return sorted(self.keys)

    def destroy(self, day: date) -> bool:
        return self.keys.pop(day, None) is not None
