"""axe-core for the browser tests: installed from npm into the virtualenv on first use, then
injected into pages to check them against WCAG.

The install is automatic and idempotent, like ``scripts/ensure-chromium``: nothing happens when
the pinned version is already there. When it cannot be installed, the test fails; it never
skips, since a skipped accessibility check reads like a passed one.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

__all__ = ["AXE_VERSION", "ensure_axe", "violations"]

AXE_VERSION = "4.14.1"
AXE_DIR = Path(sys.prefix) / "axe-core"  # inside .venv: `make clean` removes it with the rest


def _installed(script: Path) -> bool:
    package = script.with_name("package.json")
    if not script.is_file() or not package.is_file():
        return False
    return bool(json.loads(package.read_text()).get("version") == AXE_VERSION)


def _npm() -> str:
    npm = shutil.which("npm")
    if npm is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = os.environ | {"DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "update", "-qq"], check=False, env=env, timeout=600)
        subprocess.run(
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "npm"],
            check=False,
            env=env,
            timeout=900,
        )
        npm = shutil.which("npm")
    if npm is None:
        pytest.fail("axe-core needs npm to install, and there is none (apt-get install npm)")
    return npm


def ensure_axe() -> Path:
    """The path of ``axe.min.js`` at :data:`AXE_VERSION`, installing it when missing."""
    script = AXE_DIR / "node_modules" / "axe-core" / "axe.min.js"
    if _installed(script):
        return script
    AXE_DIR.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        [
            _npm(),
            "install",
            "--prefix",
            str(AXE_DIR),
            "--no-audit",
            "--no-fund",
            "--no-save",
            "--no-package-lock",
            f"axe-core@{AXE_VERSION}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if result.returncode != 0 or not _installed(script):
        pytest.fail(f"could not install axe-core {AXE_VERSION}:\n{result.stderr[-2000:]}")
    return script


async def violations(page: Any, script: Path) -> list[str]:
    """axe-core's violations on ``page``, one line each (rule, impact, the elements at fault).

    The page's context must bypass CSP: ``add_script_tag`` injects axe inline, which the
    pages' ``default-src 'self'`` would refuse.
    """
    if not await page.evaluate("typeof window.axe === 'object'"):
        await page.add_script_tag(path=str(script))
    found = await page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .map(v => `${v.id} (${v.impact}): ` +
                      v.nodes.map(n => n.target.join(" ")).join(", "))"""
    )
    return [str(line) for line in found]
