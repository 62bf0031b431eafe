"""The ledger API's `type` filter accepts exactly the entry types the ledger writes."""

from __future__ import annotations

from typing import get_args

from blo_exchange.api.routes_ledger import EntryType
from blo_exchange.ledger.entries import ENTRY_TYPES


def test_filter_types_are_the_entry_types() -> None:
    assert set(get_args(EntryType)) == set(ENTRY_TYPES)
