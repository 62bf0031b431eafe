"""The ``blo-exchange package`` commands as an operator runs them on a node's host, for the
integration tests that carry packages (``test_packages``, ``test_trust_ledger_keys``)."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path

from typer.testing import CliRunner

from blo_exchange.cli.main import app
from blo_exchange.domain.ids import format_time
from tests.integration.pipeline import Deployment

__all__ = ["export_package", "package_cli"]


async def package_cli(deploy: Deployment, node_id: str, *args: str) -> tuple[int, str]:
    """``blo-exchange package ARGS`` as run on ``node_id``'s host, with its settings (in a
    thread: the command runs its own event loop)."""
    settings = deploy.runtimes[node_id].settings
    env = {
        "BLO_NODE_ID": node_id,
        "BLO_DATABASE_URL": settings.database_url.get_secret_value(),
        "BLO_NATS_URL": settings.nats_url.get_secret_value(),
        "BLO_KEY_DIR": str(settings.key_dir),
        "BLO_PINNED_ROOTS_FILE": str(settings.pinned_roots_file),
    }
    result = await asyncio.to_thread(CliRunner().invoke, app, ["package", *args], env=env)
    return result.exit_code, result.output


async def export_package(
    deploy: Deployment, node_id: str, *, since: datetime, destination: str, to: Path
) -> tuple[int, str]:
    """``package export`` of what ``node_id`` sent since ``since``, for ``destination``."""
    return await package_cli(
        deploy,
        node_id,
        "export",
        "--since",
        format_time(since),
        "--for",
        destination,
        "--to",
        str(to),
    )
