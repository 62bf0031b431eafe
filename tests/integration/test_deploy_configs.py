"""Every NATS config in deploy/ is one nats-server accepts, and each makes acks wait for fsync."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from blo_exchange.bus.permissions import prepare_nats_auth
from blo_exchange.crypto.tls import demo_pki
from blo_exchange.demo.directory import DEMO_NODES
from blo_exchange.embedded.nats import check_config

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
CONFIGS = sorted(DEPLOY.rglob("*.conf"))


def test_there_are_configs() -> None:
    assert len(CONFIGS) >= 4


def installed(path: Path, root: Path) -> Path:
    """The config as installed under ``root`` instead of /etc/nats: beside it the users the CLI
    writes (auth.conf) and a CA with the server's certificate (tls/), which nats-server -t loads."""
    text = path.read_text().replace("/etc/nats/", f"{root}/")
    (root / path.name).write_text(text)
    auth = prepare_nats_auth(DEMO_NODES, root / "keys")
    (root / "auth.conf").write_text(auth.config)
    demo_pki(root / "tls", ["server"], hosts=["hub-1"], now=dt.datetime.now(dt.UTC))
    return root / path.name


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_is_valid_and_syncs_always(path: Path, tmp_path: Path) -> None:
    check_config(installed(path, tmp_path))
    text = path.read_text()
    jetstream = re.search(r"jetstream\s*\{(?P<body>[^}]*)\}", text)
    assert jetstream is not None, "JetStream must be enabled"
    assert re.search(r"^\s*sync_interval:\s*always\s*$", jetstream["body"], re.M)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_link_speaks_tls_and_every_client_is_a_user(path: Path) -> None:
    text = path.read_text()
    assert re.search(r'^include "auth.conf"$', text, re.M), "no users: anonymous clients"
    assert re.search(r'^tls \{[^}]*min_version: "1.2"', text, re.M), "clients without TLS"
    for block in ("cluster", "leafnodes"):
        body = re.search(rf"^{block} \{{(?P<body>.*?)^\}}", text, re.M | re.S)
        if body is None:
            continue
        assert "tls {" in body["body"], f"{block} links without TLS"
        if "listen:" in body["body"]:
            assert "verify: true" in body["body"], f"{block} peers' certificates unchecked"
