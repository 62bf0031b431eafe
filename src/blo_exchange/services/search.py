"""An analyst's search of the alerts their agency received, by name, document, plate, phone or
company, across Cyrillic and Latin spellings.

(1) Only an analyst of this node's agency searches (the feed's rule). (2) The query becomes match
keys (``domain.transliteration``); a query that gives none is refused. (3) The index is brought up
to date and asked for candidates. (4) Each candidate is read through the feed
(``FeedService.get``), which verifies the stored envelope again and applies the access rules, and
is shown only if its opened content really matches: the index is a hint, never the authority, so a
key planted in the database shows nothing that the alert itself does not say.

Not here: the index itself (``services.search_index``), lookouts at a crossing
(``services.lookout``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from blo_exchange.domain.directory import Principal
from blo_exchange.domain.transliteration import FieldKind, keys_for
from blo_exchange.errors import NotFound, PolicyError
from blo_exchange.services.feed import FeedService
from blo_exchange.services.search_index import SearchIndex, matches

__all__ = ["MAX_RESULTS", "AlertSearch", "NoSearchKeyError", "SearchResult", "query_keys"]

MAX_RESULTS: Final = 50


class NoSearchKeyError(PolicyError):
    """The query has nothing to search by (a 422): too short, or only punctuation."""


def query_keys(field: FieldKind, query: str) -> frozenset[str]:
    """The keys a query searches by; :class:`NoSearchKeyError` when it gives none."""
    keys = keys_for(field, query)
    if not keys:
        raise NoSearchKeyError(
            f"the {field.value} query gives nothing to search by: give at least two letters or "
            "digits (seven digits for a phone)"
        )
    return keys


@dataclass(frozen=True)
class SearchResult:
    field: FieldKind
    items: list[dict[str, Any]]
    """Feed items (as ``GET /v1/alerts/{id}`` gives them), newest first."""


class AlertSearch:
    def __init__(self, *, index: SearchIndex, feed: FeedService) -> None:
        self._index = index
        self._feed = feed

    async def search(
        self, principal: Principal, field: FieldKind, query: str, *, limit: int = MAX_RESULTS
    ) -> SearchResult:
        self._feed.require_analyst(principal)  # (1)
        keys = query_keys(field, query)  # (2)
        await self._index.catch_up()  # (3)
        candidates = await self._index.find(field, keys, active_risk_at=None, limit=limit)
        items = []
        for alert_id in candidates:  # (4)
            try:
                item = await self._feed.get(principal, alert_id)
            except NotFound:
                continue
            if matches(item["case"], item.get("nominal"), field, keys):
                items.append(item)
        return SearchResult(field=field, items=items)
