"""The JetStream streams blo-exchange relies on, declared idempotently at start-up.

Every stream: file storage, no deletes or purges of messages, and a duplicate window long enough
to absorb a terminal's or node's retries (``Nats-Msg-Id`` is the alert or receipt id). The
server's ``sync_interval: always`` (set in its config, see ``embedded.nats``) makes the ack mean
"on disk", which the default does not.

In a cluster the streams are replicated (``replicas=3``, ``BLO_STREAM_REPLICAS``). Store and
forward from a remote site: the site runs a leaf node with its own JetStream domain and its own
copy of these streams, where its node's publishes are acknowledged locally; the hub's alert and
receipt streams *source* the site's streams through that domain's API (``source_domains``,
``BLO_STREAM_SOURCE_DOMAINS``), so what the site stored while its link was down flows into the
hub, in order and once, when the link is back (see deploy/README.md).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import (
    DiscardPolicy,
    ExternalStream,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    StreamSource,
)
from nats.js.errors import NotFoundError

__all__ = [
    "ALERTS_STREAM",
    "ATTACHMENTS_BUCKET",
    "ATTACHMENTS_STREAM",
    "DIRECTORY_STREAM",
    "LEDGER_STREAM",
    "RECEIPTS_STREAM",
    "StreamSpec",
    "ensure_streams",
    "stream_messages",
]


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]


ALERTS_STREAM = StreamSpec("BLO_ALERTS", ("blo.v1.alerts.>",))
RECEIPTS_STREAM = StreamSpec("BLO_RECEIPTS", ("blo.v1.receipts.>",))
LEDGER_STREAM = StreamSpec("BLO_LEDGER", ("blo.v1.ledger.>",))
# Signed directory statements: like every stream here, no delete or purge.
DIRECTORY_STREAM = StreamSpec("BLO_DIRECTORY", ("blo.v1.directory.>",))
# Sealed attachments (issue 17): a NATS Object Store bucket, laid out as nats-py and the `nats`
# CLI expect (stream OBJ_<bucket>, chunks on $O.<bucket>.C.*, metadata on $O.<bucket>.M.*), but
# declared here like every stream: no delete, no purge, no rollup (see bus/objects.py).
ATTACHMENTS_BUCKET = "BLO_ATTACHMENTS"
ATTACHMENTS_STREAM = StreamSpec(
    f"OBJ_{ATTACHMENTS_BUCKET}",
    (f"$O.{ATTACHMENTS_BUCKET}.C.>", f"$O.{ATTACHMENTS_BUCKET}.M.>"),
)
ALL_STREAMS = (ALERTS_STREAM, RECEIPTS_STREAM, LEDGER_STREAM, DIRECTORY_STREAM, ATTACHMENTS_STREAM)
# What a site's node publishes and the hub sources from each site's domain.
SOURCED_STREAMS = (ALERTS_STREAM, RECEIPTS_STREAM, ATTACHMENTS_STREAM)


def stream_config(
    spec: StreamSpec,
    *,
    duplicate_window: float,
    replicas: int = 1,
    source_domains: Sequence[str] = (),
) -> StreamConfig:
    sources = [
        StreamSource(name=spec.name, external=ExternalStream(api=f"$JS.{domain}.API"))
        for domain in source_domains
        if spec in SOURCED_STREAMS
    ]
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
        # Attachment chunks are read one by one as raw messages (not base64 in a JSON answer).
        allow_direct=spec is ATTACHMENTS_STREAM,
        sources=sources or None,
    )


async def ensure_streams(
    js: JetStreamContext,
    *,
    duplicate_window: float,
    replicas: int = 1,
    source_domains: Sequence[str] = (),
) -> None:
    """Create the streams that are missing; bring existing ones to this configuration.

    ``source_domains``: the JetStream domains of the leaf sites whose alerts and receipts these
    streams pull in (on the hub only; a site's own streams source nothing).
    """
    for spec in ALL_STREAMS:
        config = stream_config(
            spec,
            duplicate_window=duplicate_window,
            replicas=replicas,
            source_domains=source_domains,
        )
        try:
            await js.stream_info(spec.name)
        except NotFoundError:
            await js.add_stream(config)
        else:
            await js.update_stream(config)


async def stream_messages(js: JetStreamContext, spec: StreamSpec) -> list[bytes]:
    """Every message's data in ``spec``'s stream, first to last, read one by one by sequence
    (``STREAM.MSG.GET``): no consumer is created, so it needs no durable of its own. Meant for
    small streams (the directory's); a sequence with no message is skipped."""
    state = (await js.stream_info(spec.name)).state
    if not state.messages:
        return []
    found: list[bytes] = []
    for seq in range(state.first_seq, state.last_seq + 1):
        try:
            message = await js.get_msg(spec.name, seq)
        except NotFoundError:
            continue
        found.append(bytes(message.data or b""))
    return found
