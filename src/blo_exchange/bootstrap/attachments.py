"""Composition of a node's attachments (issue 17): uploads on the node's disk, sealed files in
Postgres and in the bucket, from settings."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from blo_exchange.bus.connection import BusConnection
from blo_exchange.bus.objects import AttachmentBucket
from blo_exchange.config import Settings
from blo_exchange.db.attachment_store import SqlAttachmentStore, SqlUploadStore
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.spool import FileSpool
from blo_exchange.domain.directory import Node
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.attachments import AttachmentService, NominalFileVault
from blo_exchange.services.uploads import UploadLimits, UploadService

__all__ = ["EXPIRY_EVERY", "Attachments"]

EXPIRY_EVERY = 600.0  # seconds between sweeps of unsealed uploads


@dataclass(frozen=True)
class Attachments:
    uploads: UploadService
    service: AttachmentService

    @classmethod
    def build(
        cls,
        settings: Settings,
        *,
        node: Node,
        bus: BusConnection,
        sessions: SessionFactory,
        vault: NominalFileVault | None = None,
    ) -> Attachments:
        upload_dir = settings.upload_dir or Path(tempfile.gettempdir()) / f"blo-uploads-{node.id}"
        limits = UploadLimits(
            max_bytes=settings.attachment_max_bytes,
            types=frozenset(t.strip() for t in settings.attachment_types.split(",") if t.strip()),
            max_files=settings.attachment_max_files,
        )
        return cls(
            uploads=UploadService(
                node=node,
                store=SqlUploadStore(sessions),
                spool=FileSpool(upload_dir),
                limits=limits,
                clock=utc_now,
                ttl=timedelta(hours=settings.upload_ttl_hours),
            ),
            service=AttachmentService(
                node=node,
                store=SqlAttachmentStore(sessions),
                objects=AttachmentBucket(bus),
                vault=vault,
            ),
        )
