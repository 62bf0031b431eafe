"""The machine around a measurement: how busy its CPUs were (and how much of their time the
hypervisor took, ``steal``), and how long the disk took to flush, sampled from ``/proc`` every
0.1 s in a thread. A step that misses a latency goal says beside it whether the machine was
saturated or the disk slow, instead of leaving that to a guess (stop 30 guessed the disk; this
showed it was not).

Linux only: elsewhere, or without read access to ``/proc``, :meth:`MachineSampler.summary` is
empty. It reads two small files each tick and writes nothing.
"""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path
from typing import Any

__all__ = ["MachineSampler"]

TICK = 0.1
WINDOW_TICKS = 10
"""The busiest second is the busiest run of this many ticks."""

_PROC_STAT = Path("/proc/stat")
_DISKSTATS = Path("/proc/diskstats")
_SYS_BLOCK = Path("/sys/block")


def _cpu() -> tuple[int, int, int, int] | None:
    """Jiffies of all CPUs: (total, idle, iowait, steal)."""
    try:
        fields = _PROC_STAT.read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    values = [int(v) for v in fields[1:]]
    # user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
    # counted in user and nice.
    total = sum(values[:8])
    return total, values[3], values[4], values[7]


def _disks() -> list[str]:
    """Whole disks (not partitions, loop or RAM devices)."""
    try:
        names = [p.name for p in _SYS_BLOCK.iterdir()]
    except OSError:
        return []
    return [n for n in names if not n.startswith(("loop", "ram", "zram"))]


def _disk(names: list[str]) -> tuple[int, int, int, int] | None:
    """Summed over ``names``: (writes completed, ms writing, flushes completed, ms flushing)."""
    if not names:
        return None
    try:
        lines = _DISKSTATS.read_text().splitlines()
    except OSError:
        return None
    writes = write_ms = flushes = flush_ms = 0
    for line in lines:
        fields = line.split()
        if len(fields) < 20 or fields[2] not in names:
            continue  # kernels before 5.5 count no flushes: nothing to say about them
        writes += int(fields[7])
        write_ms += int(fields[10])
        flushes += int(fields[18])
        flush_ms += int(fields[19])
    return writes, write_ms, flushes, flush_ms


class MachineSampler:
    """``with MachineSampler() as m: ...``; then ``m.summary()``."""

    def __init__(self) -> None:
        self._disks = _disks()
        self._ticks: list[tuple[tuple[int, ...] | None, tuple[int, ...] | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._started = self._ended = 0.0

    def _sample(self) -> None:
        self._ticks.append((_cpu(), _disk(self._disks)))

    def _run(self) -> None:
        while not self._stop.wait(TICK):
            self._sample()

    def __enter__(self) -> MachineSampler:
        self._started = time.monotonic()
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        self._ended = time.monotonic()

    def summary(self) -> dict[str, Any]:
        """CPU shares of the whole machine over the window (1.0 = every CPU all the time), the
        busiest second's, and the disk's flushes: how many, their mean time, and the mean of the
        slowest tick that had any (a stall shows there even when the mean hides it)."""
        cpu = [c for c, _ in self._ticks if c is not None]
        out: dict[str, Any] = {}
        if len(cpu) >= 2:
            total = cpu[-1][0] - cpu[0][0]
            if total > 0:
                idle = (cpu[-1][1] - cpu[0][1]) + (cpu[-1][2] - cpu[0][2])
                out["cpu_busy_share"] = round(1 - idle / total, 3)
                out["cpu_steal_share"] = round((cpu[-1][3] - cpu[0][3]) / total, 3)
                out["cpu_iowait_share"] = round((cpu[-1][2] - cpu[0][2]) / total, 3)
            busiest = 0.0
            for i in range(len(cpu) - WINDOW_TICKS):
                a, b = cpu[i], cpu[i + WINDOW_TICKS]
                span = b[0] - a[0]
                if span > 0:
                    busiest = max(busiest, 1 - ((b[1] - a[1]) + (b[2] - a[2])) / span)
            out["cpu_busiest_second_share"] = round(busiest, 3)
        disk = [d for _, d in self._ticks if d is not None]
        if len(disk) >= 2:
            flushes = disk[-1][2] - disk[0][2]
            writes = disk[-1][0] - disk[0][0]
            worst = 0.0
            for a, b in itertools.pairwise(disk):
                if b[2] > a[2]:
                    worst = max(worst, (b[3] - a[3]) / (b[2] - a[2]))
            flush_ms = disk[-1][3] - disk[0][3]
            out["disk"] = {
                "flushes": flushes,
                "flush_ms_mean": round(flush_ms / flushes, 2) if flushes else None,
                "flush_ms_worst_tick": round(worst, 2),
                "writes": writes,
                "write_ms_mean": round((disk[-1][1] - disk[0][1]) / writes, 2) if writes else None,
            }
        out["seconds"] = round(self._ended - self._started, 1)
        return out


if __name__ == "__main__":  # a quick look: python -m bench.machine
    with MachineSampler() as sampler:
        time.sleep(2)
    print(sampler.summary())
