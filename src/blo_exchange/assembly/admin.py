"""Directory administration used by the CLI."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from blo_exchange.config import Settings
from blo_exchange.crypto.keys import VerifyKey, public_key_from_record
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.ledger.db import create_engine, session_factory
from blo_exchange.ledger.directory import SqlDirectory
from blo_exchange.services.auth import hash_token, new_token

__all__ = ["create_principal", "register_public_keys", "with_directory"]

T = TypeVar("T")


async def create_principal(
    settings: Settings,
    *,
    role: str,
    label: str,
    node_id: str | None,
    agency_id: str | None,
    expires_days: int | None,
) -> str:
    """Register a principal and return its token (the only time it is ever visible)."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        directory = SqlDirectory(session_factory(engine))
        if node_id is not None and agency_id is None:
            agency_id = (await directory.node(node_id)).agency_id
        now = datetime.now(UTC)
        parsed = Role(role)
        token = new_token()
        await directory.add_principal(
            Principal(
                id=f"{parsed.value}-{secrets.token_hex(6)}",
                role=parsed,
                node_id=node_id,
                agency_id=agency_id,
                label=label,
                created_at=now,
                expires_at=None if expires_days is None else now + timedelta(days=expires_days),
                revoked_at=None,
            ),
            hash_token(token),
        )
        return token
    finally:
        await engine.dispose()


async def with_directory(settings: Settings, action: Callable[[SqlDirectory], Awaitable[T]]) -> T:
    """Run one directory action on a short-lived connection pool."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        return await action(SqlDirectory(session_factory(engine)))
    finally:
        await engine.dispose()


async def register_public_keys(
    directory: SqlDirectory, *, owner_kind: str, owner_id: str, records: list[dict[str, Any]]
) -> list[str]:
    """Register the records `blo-exchange keys init` printed; returns the key ids added."""
    added = []
    for record in records:
        key = public_key_from_record(record)
        alg = "Ed25519" if isinstance(key, VerifyKey) else key.suite.value
        if await directory.add_key(
            key_id=key.key_id, owner_kind=owner_kind, owner_id=owner_id, alg=alg, public=key.public
        ):
            added.append(key.key_id)
    return added
