"""The analyst's statistics page: seizures by crossing point, substance and month as bar charts,
a schematic map of the crossing points, a table of every total, and the CSV export.

The numbers are the API's own (``services.statistics`` over the feed service, which checks the
viewer is an analyst of this node's agency), served here under the session cookie.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from blo_exchange.domain.directory import Role
from blo_exchange.services.feed import FeedService
from blo_exchange.services.seizure_export import seizures_csv
from blo_exchange.services.statistics import Total, collect, compute
from blo_exchange.web.charts import BarChart, bar_chart, crossing_map
from blo_exchange.web.deps import Viewer, language_of, render, require, services_of
from blo_exchange.web.formatting import Formats
from blo_exchange.web.messages import Catalogue, catalogue

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Analyst = Annotated[Viewer, Depends(require(Role.ANALYST))]


def _amounts(total: Total, t: Catalogue, fmt: Formats) -> str:
    return " · ".join(
        f"{fmt.number(amount)} {t('stats.unit.' + unit)}"
        for unit, amount in total.quantities.items()
    )


def _chart(
    totals: Mapping[str, Total], label_of: Mapping[str, str], t: Catalogue, fmt: Formats
) -> BarChart:
    rows = []
    for key, total in totals.items():
        label = label_of.get(key, key)
        count = fmt.number(total.seizures)
        rows.append(
            (
                label,
                total.seizures,
                f"{count} · {_amounts(total, t, fmt)}",
                t("stats.bar", label=label, count=count),
            )
        )
    return bar_chart(rows)


@router.get("/analyst/statistics")
async def statistics_page(request: Request, viewer: Analyst) -> Response:
    lang = language_of(request)
    t, fmt = catalogue(lang), Formats(lang)
    stats = compute(await collect(services_of(request).get(FeedService), viewer.principal))
    substances = {key: t(f"vocab.Substance.{key}") for key in stats.by_substance}
    months = {key: fmt.month(key) for key in stats.by_month}
    return render(
        request,
        "statistics.html",
        viewer=viewer,
        stats=stats,
        charts={
            "crossing": _chart(stats.by_crossing_point, {}, t, fmt),
            "substance": _chart(stats.by_substance, substances, t, fmt),
            "month": _chart(stats.by_month, months, t, fmt),
        },
        crossings=crossing_map({k: v.seizures for k, v in stats.by_crossing_point.items()}),
        months=months,
    )


@router.get("/analyst/statistics.csv")
async def statistics_csv(request: Request, viewer: Analyst) -> Response:
    text = seizures_csv(await collect(services_of(request).get(FeedService), viewer.principal))
    return Response(
        text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="seizures.csv"'},
    )
