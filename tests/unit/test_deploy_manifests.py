"""The compose file and Kubernetes manifests in deploy/ hang together with the program.

No Docker engine or cluster runs here, so these check what can be checked offline: the files
parse, every process is started with a command the CLI has, every mounted NATS config exists and
syncs always, and every setting the manifests pass is one the program reads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from typer.main import get_command

from blo_exchange.cli.main import app
from blo_exchange.config import Settings

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
COMMANDS = set(get_command(app).commands)  # type: ignore[attr-defined]
SETTINGS = {f"BLO_{name.upper()}" for name in Settings.model_fields}
DB_ADMIN = get_command(app).commands["db"]  # type: ignore[attr-defined]
DB_ADMIN_ENV = {
    param.envvar
    for command in DB_ADMIN.commands.values()
    for param in command.params
    if isinstance(param.envvar, str)
}
"""What ``blo-exchange db …`` reads (the superuser's URL, a role's password): for the one-shot
services that create the databases, never a node's setting."""


def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    return document


def test_compose_services_run_real_commands_with_real_settings() -> None:
    services = compose()["services"]
    ours = {name: s for name, s in services.items() if "build" in s}
    assert {"db-ledger", "ledger-writer", "blo-karamyk-kg", "blo-karamyk-tj"} <= set(ours)
    for name, service in ours.items():
        assert service["command"][0] in COMMANDS, name
        if service["command"][0] == "db":
            assert set(service["environment"]) <= DB_ADMIN_ENV, name
        else:
            assert set(service["environment"]) <= SETTINGS, name
            assert "BLO_SUPERUSER_URL" not in service["environment"], name


def test_compose_gives_each_agency_its_own_database_and_no_node_the_superuser() -> None:
    services = compose()["services"]
    urls = {
        name: (
            s["environment"]["BLO_DATABASE_URL"],
            s["environment"].get("BLO_LEDGER_DATABASE_URL"),
        )
        for name, s in services.items()
        if "BLO_DATABASE_URL" in s.get("environment", {})
    }
    assert set(urls) == {"ledger-writer", "blo-karamyk-kg", "blo-karamyk-tj"}
    own = {name: url.rpartition("/")[2] for name, (url, _) in urls.items()}
    assert own == {
        "ledger-writer": "blo_ledger",
        "blo-karamyk-kg": "blo_kg_border_service",
        "blo-karamyk-tj": "blo_tj_drug_control_agency",
    }
    for name, (url, ledger) in urls.items():
        assert "//postgres:" not in url, name  # the superuser's name
        if name != "ledger-writer":
            assert ledger is not None, name
            assert ledger.endswith("/blo_ledger"), name
            assert "_witness:" in ledger, name


def test_compose_nats_servers_use_the_checked_configs() -> None:
    services = compose()["services"]
    for index in (1, 2, 3):
        mount = services[f"nats-{index}"]["volumes"][0].split(":")[0]
        config = (DEPLOY / "compose" / mount).resolve()
        assert config == DEPLOY / "nats" / f"hub-{index}.conf"
        assert "sync_interval: always" in config.read_text()


def test_kubernetes_manifests_parse_and_use_real_commands_and_settings() -> None:
    documents = list(yaml.safe_load_all((DEPLOY / "kubernetes" / "blo-exchange.yaml").read_text()))
    kinds = [d["kind"] for d in documents]
    assert kinds.count("Deployment") == 2
    assert "Job" in kinds
    for document in documents:
        if document["kind"] not in {"Deployment", "Job"}:
            continue
        for container in document["spec"]["template"]["spec"]["containers"]:
            assert container["args"][0] in COMMANDS
            assert {e["name"] for e in container["env"]} <= SETTINGS
    values = yaml.safe_load((DEPLOY / "kubernetes" / "nats-values.yaml").read_text())
    assert values["config"]["jetstream"]["merge"]["sync_interval"] == "always"
    assert values["config"]["cluster"]["replicas"] == 3
