"""Connecting to Postgres and bringing its schema up to date.

Engines are built by the caller (the app's lifespan, a CLI command), never at import time.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

__all__ = ["SessionFactory", "async_url", "create_engine", "migrate", "session_factory"]

SessionFactory = async_sessionmaker[AsyncSession]

_REPO_ROOT = Path(__file__).resolve().parents[3]


def async_url(url: str) -> str:
    """Accept a plain libpq URL too: ``postgresql://…`` becomes ``postgresql+asyncpg://…``."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url


def create_engine(url: str, *, pool_size: int = 10) -> AsyncEngine:
    return create_async_engine(
        async_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=True
    )


def session_factory(engine: AsyncEngine) -> SessionFactory:
    return async_sessionmaker(engine, expire_on_commit=False)


def _alembic_config(url: str) -> Config:
    ini = _REPO_ROOT / "alembic.ini"
    config = Config(str(ini)) if ini.exists() else Config()
    config.set_main_option("script_location", str(_REPO_ROOT / "migrations"))
    config.attributes["database_url"] = async_url(url)
    return config


def _upgrade(url: str) -> None:
    command.upgrade(_alembic_config(url), "head")


async def migrate(url: str) -> None:
    """Run every pending migration. Alembic's env runs its own event loop, so use a thread."""
    await asyncio.to_thread(_upgrade, url)
