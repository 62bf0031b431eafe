"""Errors as RFC 9457 ``application/problem+json``: the edge where exceptions become statuses.

Bodies say what was wrong in terms the caller can act on, and never carry internals (no stack
traces, SQL or key material): unexpected exceptions become a bare 500. A dependency that fails
(Postgres, NATS, the directory in Postgres), on any path and authentication included, is a 503
with Retry-After: the request may well succeed in a moment, and the client should try again.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from blo_exchange.errors import BloExchangeError, RateLimited, http_status
from blo_exchange.services.outages import Outages

__all__ = [
    "PROBLEM_JSON",
    "PROBLEM_RESPONSES",
    "Problem",
    "install_problem_handlers",
    "problem",
    "unavailable",
]

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

RETRY_AFTER = "2"
"""Seconds a client is told to wait after a 503: a restarting Postgres or NATS is back in a few."""


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every error of the API is reported."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[FieldError] | None = None


def _documented(description: str) -> dict[str, Any]:
    # "model" puts Problem (and FieldError) under components/schemas; the content entry says the
    # media type it is actually sent as.
    reference = {"$ref": "#/components/schemas/Problem"}
    return {
        "description": description,
        "model": Problem,
        "content": {PROBLEM_JSON: {"schema": reference}},
    }


# What any route may answer besides its own success; documented so clients (and schemathesis)
# know every status they can meet.
PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("Malformed request"),
    401: _documented("No, unknown, expired or revoked bearer token"),
    403: _documented("The principal's role or binding does not allow this"),
    404: _documented("Not found, or not yours to see"),
    409: _documented("The same Idempotency-Key is still being processed"),
    413: _documented("Request body too large"),
    422: _documented(
        "Invalid input, no sharing agreement covers the alert, or an auditor's query string "
        "too long to be recorded in full"
    ),
    429: _documented("Too many requests; see Retry-After"),
    500: _documented("The ledger's stored data disagrees with its signed bytes"),
    503: _documented("NATS or Postgres is unavailable"),
}


_TITLES = {
    400: "Bad request",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Payload too large",
    415: "Unsupported media type",
    422: "Unprocessable content",
    429: "Too many requests",
    500: "Internal server error",
    503: "Service unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    type_: str = "about:blank",
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": type_
        if type_ == "about:blank"
        else f"https://blo-exchange.example/problems/{type_}",
        "title": _TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
    }
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def unavailable(detail: str, type_: str) -> JSONResponse:
    """503: a dependency is down; the same request is worth sending again after Retry-After."""
    return problem(503, detail, type_=type_, headers={"Retry-After": RETRY_AFTER})


def _field(loc: tuple[int | str, ...]) -> str:
    # FastAPI prefixes "body"; a discriminated union adds the tag ("seizure") — keep both out of
    # the way of a reader who wants the JSON path of their own document.
    parts = [str(p) for p in loc]
    if parts and parts[0] == "body":
        parts = parts[1:]
        if parts and parts[0] in {"seizure", "risk", "feedback"}:
            parts = parts[1:]
    return ".".join(parts) or "body"


def install_problem_handlers(app: FastAPI, outages: Outages) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A missing Idempotency-Key is a malformed request, 400 (IETF Idempotency-Key draft).
        for e in exc.errors():
            if e.get("type") == "missing" and tuple(e.get("loc", ())) == (
                "header",
                "idempotency-key",
            ):
                return problem(
                    400, "the Idempotency-Key header is required", type_="idempotency-key-missing"
                )
        errors = [
            {"field": _field(tuple(e.get("loc", ()))), "message": str(e.get("msg", "invalid"))}
            for e in exc.errors()
        ]
        first = errors[0] if errors else {"field": "body", "message": "invalid"}
        return problem(
            422,
            f"{first['field']}: {first['message']}",
            type_="validation",
            errors=errors,
        )

    @app.exception_handler(BloExchangeError)
    async def _domain(request: Request, exc: BloExchangeError) -> JSONResponse:
        status, type_ = http_status(exc)
        if type_ == "ledger-integrity":
            log.critical("LEDGER INTEGRITY: %s", exc)
        elif status == 500:
            log.error("unmapped error %s", type(exc).__name__)
            return problem(500, "internal error")
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        if isinstance(exc, RateLimited):
            headers = {"Retry-After": str(exc.retry_after)}
        elif status == 503:
            headers = {"Retry-After": RETRY_AFTER}
        return problem(status, str(exc), type_=type_, headers=headers)

    async def _dependency(request: Request, exc: Exception) -> JSONResponse:
        # Raised through a route by an adapter (Postgres, NATS). Handled here, inside the
        # middleware, so the answer carries the usual headers and the connection stays open.
        outage = outages.classify(exc)
        if outage is not None:
            log.warning("%s on %s: %s", outage.type, request.url.path, type(exc).__name__)
            return unavailable(outage.detail, outage.type)
        log.error("dependency error on %s %s", request.method, request.url.path, exc_info=exc)
        return problem(500, "internal error")

    for error in outages.errors:
        app.add_exception_handler(error, _dependency)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return problem(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}) or None)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return problem(500, "internal error")
