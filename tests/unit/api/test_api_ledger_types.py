"""One list of ledger entry types: the API's filter, the writer and the signed records agree."""

from __future__ import annotations

from blo_exchange.api.routes_ledger import entries
from blo_exchange.domain.ledger import RECEIPT_ENTRY_TYPES, LedgerEntryType
from blo_exchange.ledger.entries import ENTRY_TYPES
from blo_exchange.services.receipts import ReceiptType
from blo_exchange.services.reshare_model import ReshareRecord


def test_filter_types_are_the_entry_types() -> None:
    assert entries.__annotations__["type"] == "LedgerEntryType | None"
    assert set(ENTRY_TYPES) == {t.value for t in LedgerEntryType}


def test_signed_receipts_and_records_are_receipt_entries() -> None:
    assert {t.value for t in ReceiptType} | {t.value for t in ReshareRecord} == {
        t.value for t in RECEIPT_ENTRY_TYPES
    }
