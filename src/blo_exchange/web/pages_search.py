"""Finding alerts by a name, document, plate, phone or company, whatever the script: the analyst's
search page (``/analyst/search``) and the officer's lookout check at a crossing
(``/officer/lookout``).

Both run the services the API runs (``services.search``, ``services.lookout``) under the session
cookie. A lookout is a POST with the page's CSRF token: each hit it finds signs and sends a
receipt to the alert's originator, so a link or a reload must not run it again unasked.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from blo_exchange.domain.directory import Role
from blo_exchange.domain.marking import GRADING_LABELS, HANDLING_LABELS
from blo_exchange.domain.transliteration import FieldKind
from blo_exchange.errors import BloExchangeError, http_status
from blo_exchange.services.lookout import Lookout, LookoutResult
from blo_exchange.services.search import AlertSearch, NoSearchKeyError, SearchResult
from blo_exchange.web.deps import Viewer, language_of, render, require, services_of
from blo_exchange.web.messages import catalogue
from blo_exchange.web.sessions import same_token

__all__ = ["router"]

router = APIRouter(include_in_schema=False)

Analyst = Annotated[Viewer, Depends(require(Role.ANALYST))]
Officer = Annotated[Viewer, Depends(require(Role.TERMINAL))]

SEARCH_FIELDS = (
    FieldKind.PERSON,
    FieldKind.DOCUMENT,
    FieldKind.PLATE,
    FieldKind.PHONE,
    FieldKind.COMPANY,
)
LOOKOUT_FIELDS = (FieldKind.PLATE, FieldKind.DOCUMENT, FieldKind.PERSON, FieldKind.PHONE)


def _field(value: object, default: FieldKind) -> FieldKind:
    try:
        return FieldKind(str(value))
    except ValueError:
        return default


@router.get("/analyst/search")
async def search_page(request: Request, viewer: Analyst) -> Response:
    t = catalogue(language_of(request))
    field = _field(request.query_params.get("field"), FieldKind.PERSON)
    query = (request.query_params.get("q") or "").strip()[:200]
    result: SearchResult | None = None
    error = None
    status = 200
    if query:
        try:
            result = (
                await services_of(request).get(AlertSearch).search(viewer.principal, field, query)
            )
        except NoSearchKeyError:
            error, status = t("search.no_key"), 422
    return render(
        request,
        "analyst_search.html",
        viewer=viewer,
        status=status,
        fields=[(f.value, t(f"target.{f.value}")) for f in SEARCH_FIELDS],
        field=field.value,
        query=query,
        result=result,
        error=error,
    )


def _lookout_page(
    request: Request,
    viewer: Viewer,
    *,
    values: dict[str, str],
    result: LookoutResult | None = None,
    error: str | None = None,
    status: int = 200,
) -> Response:
    t = catalogue(language_of(request))
    lookout = services_of(request).get(Lookout)
    return render(
        request,
        "officer_lookout.html",
        viewer=viewer,
        status=status,
        return_to="/officer/lookout",
        fields=[(f.value, t(f"target.{f.value}")) for f in LOOKOUT_FIELDS],
        crossing_points=lookout.crossing_points,
        values=values,
        result=result,
        error=error,
        handling=HANDLING_LABELS,
        grading=GRADING_LABELS,
    )


@router.get("/officer/lookout")
async def lookout_page(request: Request, viewer: Officer) -> Response:
    return _lookout_page(request, viewer, values={"field": FieldKind.PLATE.value})


@router.post("/officer/lookout")
async def lookout_check(request: Request, viewer: Officer) -> Response:
    form = await request.form()
    values = {k: v.strip() for k, v in form.items() if isinstance(v, str)}
    if not same_token(values.pop("csrf", None), viewer.csrf):
        return render(request, "error.html", viewer=viewer, status=403, problem="csrf")
    t = catalogue(language_of(request))
    field = _field(values.get("field"), FieldKind.PLATE)
    value = values.get("value", "")[:200]
    try:
        result = (
            await services_of(request)
            .get(Lookout)
            .check(
                viewer.principal, field, value, crossing_point=values.get("crossing_point") or None
            )
        )
    except NoSearchKeyError:
        return _lookout_page(request, viewer, values=values, error=t("search.no_key"), status=422)
    except BloExchangeError as exc:
        status, _ = http_status(exc)
        detail = str(exc) if status != 500 else "internal error"
        return _lookout_page(request, viewer, values=values, error=detail, status=status)
    return _lookout_page(request, viewer, values=values, result=result)
