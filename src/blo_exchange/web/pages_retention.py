"""The originating agency analyst's review of personal data about to expire at partners: keep it
longer (with a reason) or let it expire. The same ``RetentionReviews`` as the JSON API's
``/v1/retention/reviews``, so the page and the API cannot drift apart."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from blo_exchange.domain.directory import Role
from blo_exchange.domain.ids import AlertId
from blo_exchange.errors import NotFound
from blo_exchange.services.retention_review import ExtensionRefused, RetentionReviews
from blo_exchange.web.deps import Viewer, render, require, services_of
from blo_exchange.web.sessions import same_token

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Analyst = Annotated[Viewer, Depends(require(Role.ANALYST))]

WITHIN_DAYS = 14
"""How far ahead the page looks: two weeks' notice before partners erase."""


async def _page(
    request: Request, viewer: Viewer, *, status: int = 200, notice: str | None = None
) -> Response:
    tasks = (
        await services_of(request)
        .get(RetentionReviews)
        .tasks(viewer.principal, within_days=WITHIN_DAYS)
    )
    return render(
        request,
        "retention.html",
        viewer=viewer,
        status=status,
        return_to="/analyst/retention",
        tasks=tasks,
        days=WITHIN_DAYS,
        notice=notice or request.query_params.get("saved"),
    )


@router.get("/analyst/retention")
async def retention_page(request: Request, viewer: Analyst) -> Response:
    return await _page(request, viewer)


@router.post("/analyst/retention/{alert_id}")
async def decide(request: Request, alert_id: AlertId, viewer: Analyst) -> Response:
    form = await request.form()
    if not same_token(form.get("csrf"), viewer.csrf):
        return render(request, "error.html", viewer=viewer, status=403, problem="csrf")
    reviews = services_of(request).get(RetentionReviews)
    try:
        if form.get("decision") == "keep":
            try:
                until = date.fromisoformat(str(form.get("until", "")))
            except ValueError:
                return await _page(request, viewer, status=422, notice="refused.not_later")
            await reviews.keep(
                viewer.principal,
                alert_id,
                until=datetime.combine(until, time(0), tzinfo=UTC),
                reason=str(form.get("reason", "")),
            )
            saved = "kept"
        else:
            await reviews.let_expire(viewer.principal, alert_id)
            saved = "expire"
    except NotFound:
        return render(request, "error.html", viewer=viewer, status=404, problem="not_found")
    except ExtensionRefused as refused:
        return await _page(request, viewer, status=422, notice=f"refused.{refused.reason}")
    return RedirectResponse(f"/analyst/retention?saved=saved.{saved}", status_code=303)
