"""The import rule of STYLE.md, checked on the source: imports flow one way, outwards in.

    domain ← crypto ← services ← ledger ← (db, bus, embedded, config) ← (api, web)
           ← bootstrap ← demo ← cli ← __main__

A package may import ``errors`` and ``logs`` (leaves every package may use) and any package of
an inner ring; never one of its own ring (``api`` and ``web`` are siblings, so are ``db`` and
``bus``) nor of an outer one. ``cli`` is the entry point (``__main__`` imports only it). Only
``crypto`` imports ``cryptography``; ``domain``, ``services`` and ``ledger`` import no
framework. Every form of import counts: ``import a.b``, ``from a import b`` (``from blo_exchange
import web`` names ``web``), relative imports, and ``importlib.import_module``/``__import__`` of
a literal name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "blo_exchange"

RINGS: list[set[str]] = [
    {"domain"},
    {"crypto"},
    {"services"},
    {"ledger"},
    {"db", "bus", "embedded", "config"},
    {"api", "web"},
    {"bootstrap"},
    {"demo"},
    {"cli"},
    {"__main__"},
]
LEAVES = {"errors", "logs", "__init__"}  # ``__init__``: ``from blo_exchange import __version__``
RING = {name: depth for depth, ring in enumerate(RINGS) for name in ring}
FRAMEWORKS = {"fastapi", "starlette", "sqlalchemy", "nats", "cryptography", "alembic", "uvicorn"}
PURE = ["domain", "services", "ledger"]


def imports_of(path: Path, root: Path = PACKAGE.parent) -> set[str]:
    """Every module name ``path`` imports, absolute, in any form; ``from p import x`` gives both
    ``p`` and ``p.x`` (``x`` may be a module). ``root`` holds the top package's folder."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = list(path.relative_to(root).parent.parts)
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif (
            isinstance(node, ast.Call)
            and _called(node.func) in {"import_module", "__import__"}
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def _called(func: ast.expr) -> str | None:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def layer_of(module: str) -> str | None:
    """The top-level package or module of ``blo_exchange`` that ``module`` is in; ``__init__``
    for the package itself and the names it defines (``__version__``)."""
    parts = module.split(".")
    if parts[0] != "blo_exchange":
        return None
    if len(parts) == 1:
        return "__init__"
    if (PACKAGE / parts[1]).is_dir() or (PACKAGE / f"{parts[1]}.py").is_file():
        return parts[1]
    return "__init__"


def violations(path: Path, importer: str, root: Path = PACKAGE.parent) -> list[str]:
    found = []
    for name in sorted(imports_of(path, root)):
        target = layer_of(name)
        if target is None or target == importer or target in LEAVES:
            continue
        if target not in RING:
            found.append(f"{path.relative_to(root)} imports {name}, of no known layer")
        elif RING[target] >= RING[importer]:
            found.append(f"{path.relative_to(root)} imports {name}")
    return found


def layers() -> dict[str, list[Path]]:
    found: dict[str, list[Path]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        top = path.relative_to(PACKAGE).parts[0].removesuffix(".py")
        found.setdefault(top, []).append(path)
    return found


def test_every_package_has_a_place() -> None:
    assert set(layers()) <= set(RING) | LEAVES


@pytest.mark.parametrize("layer", sorted(RING))
def test_imports_flow_inwards(layer: str) -> None:
    offending = [v for path in layers().get(layer, []) for v in violations(path, layer)]
    assert offending == []


@pytest.mark.parametrize("leaf", sorted(LEAVES - {"__init__"}))
def test_leaves_import_no_layer(leaf: str) -> None:
    offending = [
        f"{path.name} imports {name}"
        for path in layers()[leaf]
        for name in imports_of(path)
        if (target := layer_of(name)) is not None and target not in LEAVES | {leaf}
    ]
    assert offending == []


@pytest.mark.parametrize("layer", PURE)
def test_inner_layers_import_no_framework(layer: str) -> None:
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for path in layers()[layer]
        for name in imports_of(path)
        if name.split(".")[0] in FRAMEWORKS
    ]
    assert offending == []


def test_only_crypto_imports_cryptography() -> None:
    offending = [
        f"{path.relative_to(PACKAGE)} imports {name}"
        for layer, paths in layers().items()
        if layer != "crypto"
        for path in paths
        for name in imports_of(path)
        if name.split(".")[0] == "cryptography"
    ]
    assert offending == []


@pytest.mark.parametrize(
    ("source", "bad"),
    [
        ("from blo_exchange.bootstrap.node import NodeRuntime\n", "blo_exchange.bootstrap.node"),
        ("import blo_exchange.web.deps\n", "blo_exchange.web.deps"),
        ("from blo_exchange import web\n", "blo_exchange.web"),
        ("from ..web import deps\n", "blo_exchange.web"),
        ("from .. import web\n", "blo_exchange.web"),
        ("import importlib\nimportlib.import_module('blo_exchange.web')\n", "blo_exchange.web"),
        ("if True:\n    from blo_exchange.web import deps\n", "blo_exchange.web"),
    ],
)
def test_the_rule_catches_every_form(tmp_path: Path, source: str, bad: str) -> None:
    """Planted in a module of ``api``, each of these is found: the test can fail."""
    planted = tmp_path / "blo_exchange" / "api" / "planted.py"
    planted.parent.mkdir(parents=True)
    planted.write_text(source)
    assert bad in imports_of(planted, tmp_path)
    assert violations(planted, "api", tmp_path) != []
