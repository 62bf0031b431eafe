"""Baseline (a): a bare FastAPI endpoint that validates the same body as ``POST /v1/alerts``.

Same model (``ALERT_SUBMISSION_ADAPTER``'s ``AlertSubmission``), same ``Idempotency-Key`` header
check, same 202 response model, served the same way (``bench.serve``). No auth, no middleware,
no database, no crypto, no bus: what a request costs in HTTP + FastAPI + pydantic alone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Body, FastAPI, Header

from blo_exchange.api.routes_alerts import IDEMPOTENCY_KEY, AcceptedAlert
from blo_exchange.domain.alerts import AlertSubmission


def create_bare_app() -> FastAPI:
    app = FastAPI(title="bare baseline")
    counter = 0

    @app.post("/v1/alerts", status_code=202, response_model=AcceptedAlert)
    async def submit_alert(
        submission: Annotated[AlertSubmission, Body()],
        idempotency_key: Annotated[str, Header(pattern=IDEMPOTENCY_KEY)],
    ) -> dict[str, Any]:
        nonlocal counter
        counter += 1
        return {
            "alert_id": "019a0000-0000-7000-8000-000000000000",
            "border_pair": submission.border_pair,
            "kind": submission.kind,
            "recipients": ["kg-border-service", "tj-drug-control-agency"],
            "agreement_ids": ["mou-kg-tj-2026"],
            "stream_seq": counter,
            "created_at": "2026-11-28T06:40:00Z",
        }

    @app.get("/readyz")
    async def readyz() -> dict[str, str]:
        return {"status": "ok"}

    return app
