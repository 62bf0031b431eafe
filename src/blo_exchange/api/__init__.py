"""The node's JSON API (FastAPI routes, dependencies, problem+json); see ``api.app``."""

from blo_exchange.api.app import install

__all__ = ["install"]
