"""Fixtures of the API's unit tests."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from blo_exchange.logs import JsonFormatter


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """What the ``blo_exchange`` loggers write at INFO and above, as the node's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("blo_exchange")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)
    logger.setLevel(previous)
