"""Which failures mean that a dependency is down: the adapters' exceptions, named for the edges.

An outage (Postgres restarting, NATS unreachable) is not the caller's mistake nor ours: the edges
answer it with 503 and ``Retry-After``, and an open stream waits it out. Only ``bootstrap`` knows
the adapters, so it builds an :class:`Outages` from their exception types and hands it to the
edges, which never import ``db`` or ``bus``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Outage", "Outages"]


@dataclass(frozen=True)
class Outage:
    """What went down, for the problem body: ``detail`` for people, ``type`` for programs."""

    detail: str
    type: str


def _none(exc: BaseException) -> Outage | None:
    return None


@dataclass(frozen=True)
class Outages:
    errors: tuple[type[Exception], ...] = ()
    """The exception types an adapter may raise through a route or a stream."""
    classify: Callable[[BaseException], Outage | None] = field(default=_none)
    """The outage one of ``errors`` means, or None for a mistake (a bad statement): a 500."""
