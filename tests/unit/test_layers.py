"""The import rules of STYLE.md, checked on the source: imports flow one way.

``domain`` ← ``crypto`` ← ``services`` ← (``bus``, ``ledger``) ← (``assembly``) ← (``api``,
``cli``); ``interop`` (the STIX mapping) sits beside ``services``. Only ``crypto`` imports
``cryptography``; nothing imports ``api`` or ``cli`` but themselves and the entry point.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "blo_exchange"

# For each layer, the blo_exchange layers it may import (besides itself).
ALLOWED: dict[str, set[str]] = {
    "domain": {"errors"},
    "crypto": {"errors", "domain"},
    "services": {"errors", "domain", "crypto"},
    "interop": {"errors", "domain"},
    "bus": {"errors", "domain", "crypto", "services"},
    "ledger": {"errors", "domain", "crypto", "services"},
    "runtime": {"errors"},
    "assembly": {
        "errors", "domain", "crypto", "services", "bus", "ledger", "runtime", "config",
    },
    "api": {
        "errors", "domain", "crypto", "services", "interop", "bus", "ledger", "assembly", "config",
    },
    "web": {"errors", "domain", "crypto", "services", "bus", "ledger", "assembly", "config", "api"},
    "cli": {
        "errors", "domain", "crypto", "services", "interop", "bus", "ledger", "assembly", "config",
        "api", "runtime",
    },
}  # fmt: skip
FRAMEWORKS = {"fastapi", "starlette", "sqlalchemy", "nats", "cryptography", "alembic", "uvicorn"}


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layer_imports_flow_one_way(layer: str) -> None:
    offending = []
    for path in modules(layer):
        for name in imports_of(path):
            parts = name.split(".")
            if parts[0] == "blo_exchange" and len(parts) > 1:
                target = parts[1]
                if target != layer and target not in ALLOWED[layer]:
                    offending.append(f"{path.relative_to(PACKAGE)} imports {name}")
    assert offending == []


@pytest.mark.parametrize("layer", ["domain", "services", "interop"])
def test_inner_layers_import_no_framework(layer: str) -> None:
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in modules(layer)
        for name in imports_of(path)
        if name.split(".")[0] in FRAMEWORKS
    ]
    assert offending == []


def test_only_crypto_imports_cryptography() -> None:
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path.parent.name != "crypto"
        for name in imports_of(path)
        if name.split(".")[0] == "cryptography"
    ]
    assert offending == []


def test_the_rule_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.py"
    bad.write_text("from blo_exchange.api.app import create_app\nimport cryptography\n")
    assert imports_of(bad) == {"blo_exchange.api.app", "cryptography"}
