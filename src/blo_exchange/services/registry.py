"""The services a running node offers its edges, looked up by type.

``bootstrap`` builds a node and registers each service under the class (or Protocol) the edges
know it by; ``api`` and ``web`` ask for exactly the ones a route needs. Neither edge sees the
composition (``bootstrap.node.NodeRuntime``) nor an adapter's concrete class.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

__all__ = ["ServiceNotRunning", "Services"]

T = TypeVar("T")


class ServiceNotRunning(LookupError):  # noqa: N818
    """Asked for a service this node was not built with (a wiring mistake, not a user's)."""


class Services:
    def __init__(self) -> None:
        self._by_type: dict[type[Any], object] = {}

    def add(self, kind: type[T], service: T) -> None:
        self._by_type[kind] = service

    def get(self, kind: type[T]) -> T:
        try:
            return cast(T, self._by_type[kind])
        except KeyError:
            raise ServiceNotRunning(kind.__name__) from None

    def has(self, kind: type[Any]) -> bool:
        return kind in self._by_type
