"""The base of the domain's pydantic models: frozen, and unknown fields are errors.

``extra="forbid"`` is what makes an unknown field in a request body a 422 rather than something
silently dropped (or, worse, silently signed). Not for adapters' own models.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["DomainModel"]


class DomainModel(BaseModel):
    """Frozen, closed pydantic model."""

    model_config = ConfigDict(frozen=True, extra="forbid")
