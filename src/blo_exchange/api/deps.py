"""FastAPI dependencies: the node runtime and the authenticated principal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from blo_exchange.api.limits import RateLimiter
from blo_exchange.assembly.node import NodeRuntime
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import Forbidden

__all__ = ["Auditor", "CurrentPrincipal", "Runtime", "get_principal", "get_runtime"]


def get_runtime(request: Request) -> NodeRuntime:
    runtime: NodeRuntime = request.app.state.runtime
    return runtime


Runtime = Annotated[NodeRuntime, Depends(get_runtime)]


async def get_principal(request: Request, runtime: Runtime) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    principal = await runtime.auth.authenticate(
        token.strip() if scheme.lower() == "bearer" else None
    )
    request.state.principal_id = principal.id
    limiter: RateLimiter = request.app.state.limiter
    limiter.take(principal.id)
    return principal


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]


async def require_auditor(principal: CurrentPrincipal) -> Principal:
    if principal.role is not Role.AUDITOR:
        raise Forbidden("the ledger is for auditors")
    return principal


Auditor = Annotated[Principal, Depends(require_auditor)]
