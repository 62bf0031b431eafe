"""A long-running process's heap: what start-up built is left out of every later collection
(:func:`freeze_heap`), and large buffers go back to the system when freed
(:func:`map_large_buffers`).

A full (generation 2) collection walks every container object the interpreter tracks, and the
event loop stands still meanwhile. After start-up a node tracks about 190,000: its modules,
FastAPI's routes, pydantic's and SQLAlchemy's models, nearly all of them for its whole life.
Walking them took 120 to 250 ms on a loaded 2-core machine, every few seconds under load: those
were the tails of delivery and of the live feed (issue 14; bench/README.md, "stop 25").

:func:`freeze_heap` collects once, then moves every object left to the permanent generation
(``gc.freeze``), which later collections skip. Objects made afterwards are collected as before,
and a full collection then walks a few tens of thousands of objects (10 to 30 ms measured). The
price: a frozen object that later becomes unreachable through a reference cycle is never freed
(plain reference counting still frees the rest). Start-up's objects live as long as the process,
so nothing measurable is kept.

Both are called by the process entry points (``blo-exchange serve``, ``ledger-writer``), before
they start serving, never on import: a test process that builds apps in-process keeps its
collector and its allocator as they were.
"""

from __future__ import annotations

import ctypes
import gc

__all__ = ["freeze_heap", "map_large_buffers"]


def freeze_heap() -> None:
    """Collect, then leave every object alive now out of later collections."""
    gc.collect()
    gc.freeze()


M_MMAP_THRESHOLD = -3
"""glibc's ``mallopt`` parameter (``malloc.h``)."""
LARGE_BUFFER = 128 * 1024
"""Buffers from this size on get their own mapping, given back to the system when freed."""


def map_large_buffers() -> bool:
    """Have glibc map every buffer of :data:`LARGE_BUFFER` or more on its own, always.

    glibc starts so, then raises the threshold to the size of each mapped buffer freed (up to
    32 MiB): after one 5 MiB attachment went through, buffers up to 5 MiB came from the heap,
    whose freed space, fragmented by the small objects between them, the process kept. A node
    that had passed three 5 MiB files KG -> TJ stayed 27 MB larger for its whole life (issue 14,
    bench/README.md "stop 28"). Setting the threshold once turns that adjustment off. Whether
    it was set: not on a C library without ``mallopt`` (nothing changes there).
    """
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGE_BUFFER))
