"""The domain imports only the standard library, pydantic and itself (STYLE principle 1)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import blo_exchange.domain

ALLOWED_THIRD_PARTY = {"pydantic", "annotated_types", "typing_extensions"}
ALLOWED_OWN = ("blo_exchange.domain", "blo_exchange.errors")


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_domain_imports_no_framework() -> None:
    package = Path(blo_exchange.domain.__file__).parent
    for path in sorted(package.glob("*.py")):
        for name in _imports(path):
            top = name.split(".")[0]
            allowed = (
                top in sys.stdlib_module_names
                or top in ALLOWED_THIRD_PARTY
                or name.startswith(ALLOWED_OWN)
            )
            assert allowed, f"{path.name} imports {name}"
