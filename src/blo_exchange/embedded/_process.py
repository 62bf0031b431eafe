"""Child-process plumbing shared by the embedded servers: log files, tails and shutdown.

Servers are started in their own session (``start_new_session=True``) so that Ctrl-C in a terminal
reaches only our process, which then stops the servers in order instead of racing them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

__all__ = ["group_gone", "kill_process", "log_tail", "open_log", "stop_process"]

_POLL_INTERVAL = 0.05


def open_log(path: Path) -> BinaryIO:
    """Open ``path`` for appending and mark where this run's output starts."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Server logs can quote failing statements and client names: readable by us alone.
    log = os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    log.write(f"--- blo-exchange runtime: starting at {stamp} ---\n".encode())
    log.flush()
    return log


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of ``path``, for error messages; never raises."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(no log at {path}: {exc})"
    tail = "\n".join(text.splitlines()[-lines:])
    return f"last lines of {path}:\n{tail}"


def stop_process(
    process: subprocess.Popen[bytes], sig: signal.Signals, timeout: float, *, group: bool
) -> None:
    """Send ``sig``, wait up to ``timeout`` seconds, then SIGKILL (the whole group if ``group``)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_process(process, group=group)
            return
    if group:
        group_gone(process.pid, timeout=timeout)


def kill_process(process: subprocess.Popen[bytes], *, group: bool) -> None:
    """SIGKILL the process (and, if ``group``, every process in its group) and reap it."""
    try:
        if group:
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except ProcessLookupError:
        pass
    process.wait()
    if group:
        group_gone(process.pid, timeout=10.0)


def group_gone(pgid: int, timeout: float) -> bool:
    """Wait until no live (non-zombie) process is left in process group ``pgid``."""
    deadline = time.monotonic() + timeout
    while _group_alive(pgid):
        if time.monotonic() > deadline:
            return False
        time.sleep(_POLL_INTERVAL)
    return True


def _group_alive(pgid: int) -> bool:
    if not sys.platform.startswith("linux"):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    # On Linux, read /proc: orphans of a killed server may linger as zombies when PID 1 does not
    # reap, and a zombie holds no socket, shared memory or file lock.
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        # Fields after the parenthesised command name: state, ppid, pgrp, ...
        fields = stat.rpartition(")")[2].split()
        if len(fields) >= 3 and fields[0] != "Z" and int(fields[2]) == pgid:
            return True
    return False
