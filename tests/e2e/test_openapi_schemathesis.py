"""Schemathesis against each operation of a node's OpenAPI document, over real HTTP.

Every check schemathesis has runs with at least 100 examples an operation. The node runs as
the demo runs it (real NATS, Postgres, processes). Per-principal rate limits are lifted for
this run: they are tested on their own, and would otherwise answer most examples with 429.
Each request carries the credential of the role the operation is for, so the examples reach
the handlers rather than stop at 401/403.

Configured in ``schemathesis.toml``: the business refusals a schema cannot express are
documented statuses that count as accepting positive data. Not run here:
``GET /v1/feed/stream``, a Server-Sent Events stream that never ends by design. It is covered by
``test_demo.py``.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import Case, GenerationMode

from blo_exchange.bootstrap.app import create_app
from blo_exchange.config import Settings
from tests.e2e.demo_process import Demo

EXAMPLES = 100
NODE = "blo-karamyk-kg"
EXCLUDED = {"/v1/feed/stream"}


@pytest.fixture(scope="module")
def credentials(runtime_dir: Path) -> Iterator[dict[str, Any]]:
    base = Path(os.path.realpath(runtime_dir)) / f"schemathesis-{uuid.uuid4().hex[:8]}"
    base.mkdir()
    base.chmod(0o711)
    demo = Demo(base / "blo", env={"BLO_RATE_LIMIT": "0"})
    bundle = os.environ.get("REQUESTS_CA_BUNDLE")
    try:
        credentials = demo.start()
        # Schemathesis calls through requests, which checks the node's certificate against
        # this bundle: the demo CA's.
        os.environ["REQUESTS_CA_BUNDLE"] = credentials["ca_file"]
        yield credentials
        assert demo.interrupt() == 0
    finally:
        demo.kill()
        if bundle is None:
            os.environ.pop("REQUESTS_CA_BUNDLE", None)
        else:
            os.environ["REQUESTS_CA_BUNDLE"] = bundle


@pytest.fixture(scope="module")
def api_schema(credentials: dict[str, Any]) -> Any:
    url = credentials["nodes"][NODE]["url"]
    return schemathesis.openapi.from_url(f"{url}/openapi.json").exclude(path="/v1/feed/stream")


def cases() -> list[tuple[str, str, GenerationMode]]:
    """Every operation of the node's OpenAPI document (known without a running node), with
    valid data, and with invalid data where it takes any input to make invalid."""
    spec = create_app(Settings(node_id=NODE)).openapi()
    found = []
    for path, item in sorted(spec["paths"].items()):
        for method, operation in item.items():
            if path in EXCLUDED:
                continue
            found.append((method.upper(), path, GenerationMode.POSITIVE))
            if operation.get("parameters") or operation.get("requestBody"):
                found.append((method.upper(), path, GenerationMode.NEGATIVE))
    return found


def token_for(path: str, method: str, credentials: dict[str, Any]) -> str:
    node = credentials["nodes"][NODE]
    if path.startswith("/v1/ledger"):
        return str(credentials["auditor_token"])
    if path.startswith(("/v1/feed", "/v1/statistics", "/v1/search", "/taxii2")) or path.endswith(
        "/receipts"
    ):
        return str(node["analyst_token"])
    if path.startswith("/v1/alerts") and method == "GET":
        return str(node["analyst_token"])
    return str(node["terminal_token"])


@pytest.mark.parametrize(("method", "path", "mode"), cases())
def test_operation(
    api_schema: Any, credentials: dict[str, Any], method: str, path: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    headers = {"Authorization": f"Bearer {token_for(path, method, credentials)}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=list(HealthCheck),
        # The same examples every run, so CI is repeatable; BLO_SCHEMATHESIS_RANDOM=1 explores.
        derandomize=not os.environ.get("BLO_SCHEMATHESIS_RANDOM"),
    )
    def examples(case: Case) -> None:
        case.call_and_validate(headers=headers, timeout=30)

    examples()
