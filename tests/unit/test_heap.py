"""What a serving process keeps in memory: ``bootstrap.heap.map_large_buffers`` gives a large
buffer back to the system when freed, even after a larger one was freed before it (glibc's
threshold no longer follows it up); neither the migration tools nor the command line's clients
are loaded."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest

GLIBC = platform.libc_ver()[0] == "glibc"

# In a process of its own: the test process keeps its allocator as it was. One 5 MiB buffer
# freed (an attachment), then forty 1 MiB buffers with small heap objects between them (a
# request's body, its parsed JSON), then the large ones freed: what stays resident?
SCRIPT = textwrap.dedent(
    """
    import os, sys
    from blo_exchange.bootstrap.heap import map_large_buffers

    def resident() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    if sys.argv[1] == "mapped":
        assert map_large_buffers()
    big = bytearray(5 << 20)
    del big
    before = resident()
    large, small = [], []
    for _ in range(40):
        large.append(bytearray(1 << 20))
        small.append(bytearray(1000))
    del large
    print((resident() - before) >> 20)
    """
)


def kept_mib(mode: str) -> int:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], capture_output=True, text=True, check=True
    )
    return int(done.stdout)


@pytest.mark.skipif(not GLIBC, reason="mallopt's threshold is glibc's")
def test_large_buffers_freed_go_back_to_the_system() -> None:
    assert kept_mib("as-is") >= 30  # the allocator's default: freed, but kept resident
    assert kept_mib("mapped") <= 2


def test_a_serving_process_does_not_load_the_migration_or_client_tools() -> None:
    # alembic, with mako and pygments, is 8 MB a process for life; only `blo-exchange migrate`
    # (and the demo's set-up) needs it. The command line's clients (httpx, with rich and
    # pygments; the terminal's SQLite outbox) are another 7.7 MB; only their commands need them.
    probe = (
        "import sys, blo_exchange.cli.main, blo_exchange.bootstrap.app, "
        "blo_exchange.bootstrap.ledger_writer; print(sorted({m.split('.')[0] for m in sys.modules "
        "if m.split('.')[0] in ('alembic', 'mako', 'httpx', 'rich', 'pygments', 'sqlite3')}))"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
