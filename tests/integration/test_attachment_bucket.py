"""The attachment bucket on a real, secured nats-server: a node puts only its own objects,
anyone can read (ciphertext), nobody deletes, purges or rolls one up, and a reader assembles
an object from its owner's chunks only, waiting while some are missing."""

from __future__ import annotations

import hashlib
import os

import nats
import pytest
from nats.errors import TimeoutError as NatsTimeout

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.objects import AttachmentBucket, chunk_subject, meta_subject
from blo_exchange.bus.permissions import NatsAuth
from blo_exchange.bus.streams import ATTACHMENTS_STREAM
from blo_exchange.embedded import NatsServer
from tests.integration.test_nats_permissions import (
    KG,
    TJ,
    as_node,
    operator,
    refused,
    secured,
)

__all__ = ["operator", "secured"]  # fixtures

DATA = os.urandom(700_000)
SHA = hashlib.sha256(DATA).hexdigest()


async def test_a_node_puts_its_own_objects_and_a_partner_reads_them(
    secured: tuple[NatsServer, NatsAuth], operator: BusConnection
) -> None:
    server, auth = secured
    kg, tj = await as_node(server, auth, KG.id), await as_node(server, auth, TJ.id)
    try:
        kg_bucket = AttachmentBucket(BusConnection(kg.client, timeout=2.0), chunk_size=100_000)
        tj_bucket = AttachmentBucket(BusConnection(tj.client, timeout=2.0))
        assert (await tj_bucket.fetch(KG.id, SHA, len(DATA))).data is None  # not there yet
        await kg_bucket.put(KG.id, SHA, DATA)
        await kg_bucket.put(KG.id, SHA, DATA)  # a retry stores nothing twice
        assert (await tj_bucket.fetch(KG.id, SHA, len(DATA))).data == DATA
        info = await operator.js.stream_info(ATTACHMENTS_STREAM.name)
        assert info.state.messages == 8  # 7 chunks and the object info, once
        # KG may not put an object in TJ's name, nor TJ delete or purge anything.
        js = kg.client.jetstream(timeout=1.0)
        await refused(kg, js.publish(chunk_subject(TJ.id, SHA), b"forged"))
        tjs = tj.client.jetstream(timeout=1.0)
        await refused(tj, tjs.purge_stream(ATTACHMENTS_STREAM.name))
        await refused(tj, tjs.delete_msg(ATTACHMENTS_STREAM.name, 1))
        await refused(tj, tjs.delete_stream(ATTACHMENTS_STREAM.name))
    finally:
        await kg.client.close()
        await tj.client.close()
    # Nor the operator: the permissions deny it, and the stream itself refuses rollups.
    with pytest.raises((NatsTimeout, TimeoutError, nats.errors.Error)):
        await operator.js.purge_stream(ATTACHMENTS_STREAM.name)
    with pytest.raises(nats.js.errors.Error):
        await operator.js.publish(meta_subject(KG.id, SHA), b"{}", headers={"Nats-Rollup": "sub"})
    reader = AttachmentBucket(operator)
    assert (await reader.fetch(KG.id, SHA, len(DATA))).data == DATA


async def test_a_partial_object_is_not_yet_here_and_a_later_chunk_does_not_replace_one(
    secured: tuple[NatsServer, NatsAuth], operator: BusConnection
) -> None:
    server, auth = secured
    kg = await as_node(server, auth, KG.id)
    try:
        js = kg.client.jetstream(timeout=1.0)
        subject = chunk_subject(KG.id, SHA)
        await js.publish(subject, DATA[:300_000], headers={"Blo-Offset": "0"})
        reader = AttachmentBucket(operator)
        partial = await reader.fetch(KG.id, SHA, len(DATA))
        assert partial.data is None  # cut at 43%: waits
        assert partial.have == 300_000
        # A second chunk at offset 0 (another attempt) is skipped; the rest completes it.
        await js.publish(subject, b"x" * 300_000, headers={"Blo-Offset": "0"})
        await js.publish(subject, DATA[300_000:], headers={"Blo-Offset": "300000"})
        assert (await reader.fetch(KG.id, SHA, len(DATA))).data == DATA  # resumed at 300,000
        assert (await AttachmentBucket(operator).fetch(KG.id, SHA, len(DATA))).data == DATA
    finally:
        await kg.client.close()
