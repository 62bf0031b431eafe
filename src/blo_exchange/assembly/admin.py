"""Directory administration used by the CLI."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from blo_exchange.config import Settings
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.ledger.db import create_engine, session_factory
from blo_exchange.ledger.directory import SqlDirectory
from blo_exchange.services.auth import hash_token, new_token

__all__ = ["create_principal"]


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
