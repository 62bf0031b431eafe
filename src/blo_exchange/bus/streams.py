"""The JetStream streams blo-exchange relies on, declared idempotently at start-up.

Every stream: file storage, no deletes or purges of messages, and a duplicate window long enough
to absorb a terminal's or node's retries (``Nats-Msg-Id`` is the alert or receipt id). The
server's ``sync_interval: always`` (set in its config, see ``runtime.nats``) makes the ack mean
"on disk", which the default does not.
"""

from __future__ import annotations

from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError

__all__ = ["ALERTS_STREAM", "LEDGER_STREAM", "RECEIPTS_STREAM", "StreamSpec", "ensure_streams"]


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]


ALERTS_STREAM = StreamSpec("BLO_ALERTS", ("blo.v1.alerts.>",))
RECEIPTS_STREAM = StreamSpec("BLO_RECEIPTS", ("blo.v1.receipts.>",))
LEDGER_STREAM = StreamSpec("BLO_LEDGER", ("blo.v1.ledger.>",))
ALL_STREAMS = (ALERTS_STREAM, RECEIPTS_STREAM, LEDGER_STREAM)


def stream_config(spec: StreamSpec, *, duplicate_window: float, replicas: int = 1) -> StreamConfig:
    return StreamConfig(
        name=spec.name,
        subjects=list(spec.subjects),
        retention=RetentionPolicy.LIMITS,
        storage=StorageType.FILE,
        discard=DiscardPolicy.OLD,
        num_replicas=replicas,
        duplicate_window=duplicate_window,
        deny_delete=True,
        deny_purge=True,
        allow_rollup_hdrs=False,
    )


async def ensure_streams(
    js: JetStreamContext, *, duplicate_window: float, replicas: int = 1
) -> None:
    """Create the streams that are missing; bring existing ones to this configuration."""
    for spec in ALL_STREAMS:
        config = stream_config(spec, duplicate_window=duplicate_window, replicas=replicas)
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)
