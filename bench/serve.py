"""Serve the node app (or the bare baseline app) with N uvicorn workers, optionally profiled.

    python -m bench.serve --app node|bare --port P --workers N --mode uvicorn|reuseport
                          [--profile OUT.pyisession]

``--workers 1`` is exactly what ``blo-exchange serve`` does: ``uvicorn.run`` of the app object,
its heap frozen first (``bootstrap.heap``), with the node's own uvicorn options
(``cli.main.server_options``: the guarded httptools protocol with its read deadlines, no proxy
headers, no access log), on plain HTTP over loopback. The bare app is served with the same
options. With more workers:

- ``uvicorn``: ``uvicorn.run(factory, workers=N)``: a supervisor binds one socket and spawns N
  worker processes that all ``accept()`` on it (the kernel wakes one of them per connection).
- ``reuseport``: N independent processes, each binding its own ``SO_REUSEPORT`` socket on the
  same port (the kernel hashes each new connection to one of them). No supervisor.

The node settings come from the ``BLO_*`` environment, as for ``blo-exchange serve``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import uvicorn

UVICORN_OPTIONS: dict[str, Any] = {
    "log_level": "warning",
    "access_log": False,
    "timeout_graceful_shutdown": 10,
    # uvicorn's own protocol, named (never "auto"), where the node's cannot go: its class is
    # made at run time and does not cross to the workers ``uvicorn.run(workers=N)`` spawns.
    "http": os.environ.get("BENCH_HTTP") or "httptools",
}


def served_as_the_node(app: str) -> dict[str, Any]:
    """The options ``blo-exchange serve`` gives uvicorn (without TLS: plain HTTP on loopback),
    for the node and for the bare app alike. ``BENCH_HTTP=h11|httptools`` serves both with
    uvicorn's unguarded protocol of that name instead; a tree from before
    ``server_options`` (an A/B run's baseline) is served as that bench served it, with h11."""
    named = os.environ.get("BENCH_HTTP")
    try:
        from blo_exchange.cli.main import server_options
        from blo_exchange.config import Settings, load_settings
    except ImportError:
        named = named or "h11"
    if named:
        return {**UVICORN_OPTIONS, "http": named}
    # Plain HTTP, as a node behind a TLS-terminating proxy on loopback is served.
    if app == "node":
        settings = load_settings().model_copy(update={"allow_plain_http": True})
    else:
        settings = Settings.model_construct(allow_plain_http=True)
    return server_options(settings)


def node_app() -> Any:
    from blo_exchange.bootstrap.app import create_app
    from blo_exchange.config import load_settings

    app = create_app(load_settings())
    _prepare_heap()
    return app


def bare_app() -> Any:
    from bench.bare_app import create_bare_app

    app = create_bare_app()
    _prepare_heap()  # the baseline too: the same collector and allocator as the node
    return app


def _prepare_heap() -> None:
    """What ``blo-exchange serve`` does to its heap before it serves; a tree from before it (an
    A/B run's baseline, ``BENCH_SRC``) without ``bootstrap.heap`` or a part of it is served as
    it was."""
    try:
        from blo_exchange.bootstrap import heap
    except ImportError:
        return
    if hasattr(heap, "map_large_buffers"):
        heap.map_large_buffers()
    heap.freeze_heap()


FACTORIES = {"node": "bench.serve:node_app", "bare": "bench.serve:bare_app"}


def _factory(app: str) -> Any:
    return node_app() if app == "node" else bare_app()


def _profiled(out: Path, interval: float, run: Any) -> None:
    from pyinstrument import Profiler

    profiler = Profiler(interval=interval, async_mode="disabled")
    profiler.start()
    try:
        run()
    finally:
        session = profiler.stop()
        session.save(str(out))


def _serve_one(args: argparse.Namespace) -> None:
    def run() -> None:
        options = served_as_the_node(args.app)
        uvicorn.run(_factory(args.app), host=args.host, port=args.port, **options)

    if args.profile:
        _profiled(Path(args.profile), args.profile_interval, run)
    else:
        run()


def _serve_reuseport_child(args: argparse.Namespace) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((args.host, args.port))
    sock.listen(2048)
    sock.set_inheritable(True)
    config = uvicorn.Config(_factory(args.app), **served_as_the_node(args.app))
    server = uvicorn.Server(config)
    server.run(sockets=[sock])


def _serve_reuseport(args: argparse.Namespace) -> None:
    """Start N children, each with its own SO_REUSEPORT socket; stop them on SIGTERM/SIGINT."""
    children = []
    for _ in range(args.workers):
        cmd = [
            sys.executable,
            "-m",
            "bench.serve",
            "--app",
            args.app,
            "--host",
            args.host,
            "--port",
            str(args.port),
            "--reuseport-child",
        ]
        children.append(subprocess.Popen(cmd))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while not stopping and all(c.poll() is None for c in children):
        time.sleep(0.2)
    for child in children:
        if child.poll() is None:
            child.terminate()
    for child in children:
        try:
            child.wait(15)
        except subprocess.TimeoutExpired:
            child.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", choices=["node", "bare"], default="node")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--mode", choices=["uvicorn", "reuseport"], default="uvicorn")
    parser.add_argument("--profile", default="")
    parser.add_argument("--profile-interval", type=float, default=0.001)
    parser.add_argument("--reuseport-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reuseport_child:
        _serve_reuseport_child(args)
    elif args.workers == 1:
        _serve_one(args)
    elif args.mode == "uvicorn":
        uvicorn.run(
            FACTORIES[args.app],
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            **UVICORN_OPTIONS,
        )
    else:
        _serve_reuseport(args)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        os.environ.setdefault("PYTHONUNBUFFERED", "1")
        main()
