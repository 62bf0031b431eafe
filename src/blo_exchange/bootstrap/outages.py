"""The adapters' failures that mean Postgres or NATS is down (``services.outages``)."""

from __future__ import annotations

from blo_exchange.bus.connection import BUS_ERRORS
from blo_exchange.db.engine import DATABASE_ERRORS, database_unavailable
from blo_exchange.services.outages import Outage, Outages

__all__ = ["ADAPTER_OUTAGES"]


def _classify(exc: BaseException) -> Outage | None:
    if isinstance(exc, BUS_ERRORS):
        return Outage("NATS is unavailable; try again shortly", "bus-unavailable")
    if database_unavailable(exc):
        return Outage("the database is unavailable; try again shortly", "db-unavailable")
    return None


ADAPTER_OUTAGES = Outages(errors=(*DATABASE_ERRORS, *BUS_ERRORS), classify=_classify)
