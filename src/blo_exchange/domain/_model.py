"""The base of the domain's pydantic models: frozen, unknown fields are errors, and no text
carries invisible controls.

``extra="forbid"`` is what makes an unknown field in a request body a 422 rather than something
silently dropped (or, worse, silently signed). Every string field, and every string in a list or
tuple field, is refused if it holds a control character other than tab, line feed and carriage
return (NUL, ESC, DEL, C1) or a bidirectional embedding, override or isolate (U+202A-U+202E,
U+2066-U+2069): these let a sender make text read differently from what is signed and stored
(the "Trojan Source" trick, CVE-2021-42574). Not refused: the invisible marks LRM and RLM, which
right-to-left scripts need. Not for adapters' own models.
"""

from __future__ import annotations

import re
from typing import Final, Self

from pydantic import BaseModel, ConfigDict, model_validator

__all__ = ["DomainModel", "check_text"]

_FORBIDDEN: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def check_text(value: str) -> str:
    """``value`` unless it holds a forbidden control or bidi character (then ValueError)."""
    found = _FORBIDDEN.search(value)
    if found is not None:
        raise ValueError(
            f"text must not contain control or bidi-override characters "
            f"(U+{ord(found.group()):04X} at position {found.start()})"
        )
    return value


class DomainModel(BaseModel):
    """Frozen, closed pydantic model whose text is free of controls and bidi overrides."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    @model_validator(mode="after")
    def _plain_text(self) -> Self:
        for value in self.__dict__.values():
            if isinstance(value, str):
                check_text(value)
            elif isinstance(value, list | tuple):
                for item in value:
                    if isinstance(item, str):
                        check_text(item)
        return self
