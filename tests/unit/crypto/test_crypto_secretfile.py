"""Secret files: 0600 from the start whatever the umask, atomic replacement, no leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from blo_exchange.crypto.secretfile import write_private_file


def test_written_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    target = tmp_path / "secret"
    previous = os.umask(0)
    try:
        write_private_file(target, b"first")
        write_private_file(target, b"second")
    finally:
        os.umask(previous)
    assert target.read_bytes() == b"second"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == ["secret"]
