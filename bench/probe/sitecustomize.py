"""A diagnostic, not part of any bench run: put this directory on the nodes' path
(``BENCH_SRC=$PWD/src:$PWD/bench/probe``; ``BENCH_SRC`` goes into their ``PYTHONPATH`` as is) and
every node and ledger writer logs, to ``/tmp/stalls-<node>-<pid>.log``, each event-loop callback
that held its loop ``BLO_PROBE_MS`` (8) ms or more, with the coroutine chain of its task, and to
``/tmp/gc-<node>-<pid>.log`` each collection of 3 ms or more. Times are wall-clock: on a
saturated machine a callback's time includes the moments the process was not running.

Python imports ``sitecustomize`` at start-up when it is on the path (bench/README.md, stop 29).
"""

from __future__ import annotations

import asyncio
import gc
import os
import sys
import time
from typing import Any, TextIO

_THRESHOLD = float(os.environ.get("BLO_PROBE_MS", "8")) / 1000
_WHO = os.environ.get("BLO_NODE_ID") or ("writer" if "ledger-writer" in sys.argv else "")
_logs: dict[str, TextIO] = {}


def _log(kind: str, line: str) -> None:
    if kind not in _logs:
        _logs[kind] = open(f"/tmp/{kind}-{_WHO}-{os.getpid()}.log", "a", buffering=1)  # noqa: SIM115
    _logs[kind].write(f"{time.time():.3f} {line}\n")


def _chain(handle: asyncio.Handle) -> str:
    task = getattr(getattr(handle, "_callback", None), "__self__", None)
    if not isinstance(task, asyncio.Task):
        return repr(getattr(handle, "_callback", handle))[:160]
    names: list[str] = []
    coro: Any = task.get_coro()
    while coro is not None and len(names) < 6:
        code = getattr(coro, "cr_code", None) or getattr(coro, "ag_code", None)
        if code is None:
            break
        names.append(code.co_qualname)
        coro = getattr(coro, "cr_await", None) or getattr(coro, "ag_await", None)
    return "task " + " > ".join(names)


if _WHO:
    _run = asyncio.events.Handle._run

    def _timed(self: asyncio.Handle) -> None:
        started = time.perf_counter()
        chain = _chain(self)  # before the step: where the task was suspended
        _run(self)
        held = time.perf_counter() - started
        if held >= _THRESHOLD:
            _log("stalls", f"{held * 1000:.1f} {chain}")

    asyncio.events.Handle._run = _timed  # type: ignore[method-assign]

    _collecting = [0.0]

    def _collector(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _collecting[0] = time.perf_counter()
            return
        took = time.perf_counter() - _collecting[0]
        if took >= 0.003:
            _log("gc", f"{took * 1000:.1f} gen{info['generation']} collected {info['collected']}")

    gc.callbacks.append(_collector)
