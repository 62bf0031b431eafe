"""Where the accept path's time goes: a pyinstrument session of a loaded node, bucketed.

Every sample's time is given to one bucket, decided by the frames on its stack: the deepest frame
that names a bucket wins (so ``canonical_json`` called from ``seal`` is canonical JSON, not
crypto), except that asyncio never takes time from a bucket already chosen (asyncpg writing to its
transport is DB), and two buckets are sticky: start-up imports, and the node's own delivery
consumer (``DeliveryService``), which re-verifies and re-opens the node's own alerts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BUCKETS: list[tuple[str, tuple[str, ...]]] = [
    ("validation (pydantic)", ("/pydantic/", "pydantic_core", "fastapi/_compat")),
    ("canonical JSON (rfc8785)", ("blo_exchange/crypto/canonical.py", "/rfc8785/")),
    ("crypto (HPKE, AES-GCM, Ed25519, envelope)", ("/cryptography/", "blo_exchange/crypto/")),
    ("publish (nats-py)", ("/nats/", "blo_exchange/bus/")),
    ("DB (SQLAlchemy + asyncpg)", ("/sqlalchemy/", "/asyncpg/", "blo_exchange/ledger/")),
    ("HTTP + framework (uvicorn, h11, starlette, fastapi)", ("/uvicorn/", "/h11/", "/starlette/")),
]
FASTAPI = "/fastapi/"
ASYNCIO = "event loop (asyncio)"
IDLE = "idle (waiting for I/O)"
STARTUP = "start-up (imports, app build)"
DELIVERY = "own delivery consumer (verify + open own alerts)"
OTHER = "other Python (blo_exchange services, api)"
STICKY = (STARTUP, DELIVERY)


def _bucket_of(path: str, function: str, current: str | None) -> str | None:
    if function in ("epoll.poll", "select.poll", "select.select", "select", "poll"):
        return IDLE
    if function in ("_factory", "node_app", "bare_app"):
        return STARTUP
    if "blo_exchange/services/delivery.py" in path:
        return DELIVERY
    for name, needles in BUCKETS:
        if any(n in path for n in needles):
            return name
    if FASTAPI in path:
        return BUCKETS[-1][0]
    if "/asyncio/" in path or path.startswith("asyncio/"):
        return ASYNCIO if current is None else current
    if "blo_exchange/" in path:
        return OTHER if current in (None, ASYNCIO, BUCKETS[-1][0]) else current
    return current


def bucket_session(path: Path) -> dict[str, Any]:
    from pyinstrument.session import Session

    session = Session.load(str(path))
    root = session.root_frame()
    totals: dict[str, float] = {}
    functions: dict[str, float] = {}
    stack: list[tuple[Any, str | None]] = [(root, None)]
    while stack:
        frame, current = stack.pop()
        path_text = frame.file_path or ""
        function = frame.function or ""
        bucket = current if current in STICKY else _bucket_of(path_text, function, current)
        self_time = frame.time - sum(child.time for child in frame.children)
        if self_time > 0:
            key = bucket or OTHER
            totals[key] = totals.get(key, 0.0) + self_time
            label = f"{function} ({frame.file_path_short or path_text}:{frame.line_no})"
            functions[label] = functions.get(label, 0.0) + self_time
        stack.extend((child, bucket) for child in frame.children)
    total = sum(totals.values())
    busy = sum(v for k, v in totals.items() if k not in (IDLE, STARTUP))
    return {
        "duration_s": session.duration,
        "cpu_time_s": session.cpu_time,
        "samples": session.sample_count,
        "seconds": dict(sorted(totals.items(), key=lambda kv: -kv[1])),
        "share_of_busy": {
            k: v / busy
            for k, v in sorted(totals.items(), key=lambda kv: -kv[1])
            if k not in (IDLE, STARTUP) and busy
        },
        "share_of_total": {k: v / total for k, v in totals.items()} if total else {},
        "top_self_time": [
            {"function": k, "seconds": round(v, 4)}
            for k, v in sorted(functions.items(), key=lambda kv: -kv[1])[:25]
        ],
    }


def render_text(path: Path, out: Path) -> None:
    from pyinstrument.renderers import ConsoleRenderer, HTMLRenderer
    from pyinstrument.session import Session

    session = Session.load(str(path))
    text = ConsoleRenderer(unicode=False, color=False, time="percent_of_total").render(session)
    out.with_suffix(".txt").write_text(text)
    out.with_suffix(".html").write_text(HTMLRenderer().render(session))
