"""Stopping cleanly on SIGINT/SIGTERM: finish the work in hand, then close connections."""

from __future__ import annotations

import asyncio
import signal

__all__ = ["stop_event"]


def stop_event() -> asyncio.Event:
    """An event set by the first SIGINT or SIGTERM (call inside the running loop)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop
