"""Free TCP ports on loopback for the embedded servers.

Asking the kernel for port 0 and closing the socket leaves a short window in which another process
may take the port; the servers are started right after, and a clash shows up as a start failure
with the log tail, not as silent misbehaviour.
"""

from __future__ import annotations

import socket

__all__ = ["free_port", "port_is_free"]


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port on ``host`` that nothing was listening on a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``port`` on ``host`` can be bound right now (used to reuse a remembered port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Match the servers: they set SO_REUSEADDR, so a port in TIME_WAIT counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True
