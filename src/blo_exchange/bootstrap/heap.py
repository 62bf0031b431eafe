"""A long-running process and Python's garbage collector: what start-up built is left out of
every later collection.

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

Called by the process entry points (``blo-exchange serve``, ``ledger-writer``), right before
they start serving, never on import: a test process that builds apps in-process keeps its
collector as it was.
"""

from __future__ import annotations

import gc

__all__ = ["freeze_heap"]


def freeze_heap() -> None:
    """Collect, then leave every object alive now out of later collections."""
    gc.collect()
    gc.freeze()
