"""Every NATS config in deploy/ is one nats-server accepts, and each makes acks wait for fsync."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from blo_exchange.embedded.nats import check_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIGS = sorted(DEPLOY.rglob("*.conf"))


def test_there_are_configs() -> None:
    assert len(CONFIGS) >= 4


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_syncs_always(path: Path) -> None:
    check_config(path)
    text = path.read_text()
    jetstream = re.search(r"jetstream\s*\{(?P<body>[^}]*)\}", text)
    assert jetstream is not None, "JetStream must be enabled"
    assert re.search(r"^\s*sync_interval:\s*always\s*$", jetstream["body"], re.M)
