"""One list of ledger entry types: the API's filter, the writer and the signed records agree; and a
page of entries, written a chunk at a time, is the JSON it always was."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi.responses import JSONResponse

from blo_exchange.api.routes_ledger import _ENTRIES_A_CHUNK, _entries_json, entries
from blo_exchange.domain.ledger import RECEIPT_ENTRY_TYPES, LedgerEntryType
from blo_exchange.ledger.entries import ENTRY_TYPES, build_entry, entry_json
from blo_exchange.services.receipts import ReceiptType
from blo_exchange.services.reshare_model import ReshareRecord


def test_filter_types_are_the_entry_types() -> None:
    assert entries.__annotations__["type"] == "LedgerEntryType | None"
    assert set(ENTRY_TYPES) == {t.value for t in LedgerEntryType}


def test_signed_receipts_and_records_are_receipt_entries() -> None:
    assert {t.value for t in ReceiptType} | {t.value for t in ReshareRecord} == {
        t.value for t in RECEIPT_ENTRY_TYPES
    }


async def _body(rows: list[tuple[int, bytes]], next_cursor: int | None) -> bytes:
    return b"".join([chunk async for chunk in _entries_json(rows, next_cursor)])


async def test_a_page_of_entries_is_written_as_the_dict_it_was() -> None:
    # Written a chunk at a time, the page is byte for byte what FastAPI wrote for the dict.
    rows = [
        (
            index,
            build_entry(
                event_id=f"e-{index}",
                type="alert_shared",
                occurred_at=datetime(2026, 12, 6, tzinfo=UTC),
                alert_id=f"a-{index}",
                detail={"note": "Қарамық ✓"},
                record=bytes(range(256)),
            ).leaf_input,
        )
        for index in range(2 * _ENTRIES_A_CHUNK + 7)
    ]
    for page, cursor in ((rows, rows[-1][0]), (rows[:1], None), ([], None)):
        whole = {"entries": [entry_json(i, leaf) for i, leaf in page], "next_cursor": cursor}
        expected = JSONResponse(whole).body
        assert await _body(page, cursor) == expected
