"""Fixtures and markers shared by every speed of test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_E2E_DIR = Path(__file__).parent / "e2e"


@pytest.fixture(scope="session")
def runtime_dir() -> Iterator[Path]:
    """A fresh directory for this session's embedded servers, removed at the end.

    It is 0711: the Postgres system user (used when we run as root) may pass through it to its
    own data directory, but may not list it.
    """
    path = Path(tempfile.mkdtemp(prefix="blo-test-"))
    path.chmod(0o711)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(_E2E_DIR):
            item.add_marker(pytest.mark.e2e)
