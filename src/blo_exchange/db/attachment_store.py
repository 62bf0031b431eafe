"""A node's attachments and officers' uploads in Postgres: bookkeeping and sealed bytes only.

``node_attachments`` keeps each file part's ciphertext (the bytes the signed envelope names by
SHA-256 and size) beside the envelope in the inbox, in the same database and its backups: an
attachment is opened like the alert, with the agency's key, on read. Kept in the database rather
than on the node's disk because it is bounded (the node's size limit) and then needs no second
store to back up, secure or keep consistent with the inbox. ``upload_sessions`` holds an upload's
state; its bytes, and its file name (which may name a person), are on disk (``db.spool``) until
sealed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert

from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.tables import AttachmentRow, UploadRow
from blo_exchange.domain.ids import utc_now
from blo_exchange.services.ports import AttachmentRecord, UploadRecord

__all__ = ["SqlAttachmentStore", "SqlUploadStore"]


def _record(row: AttachmentRow) -> AttachmentRecord:
    return AttachmentRecord(
        node_id=row.node_id,
        alert_id=row.alert_id,
        part=row.part,
        origin_node=row.origin_node,
        sha256=row.sha256,
        size=row.size,
        nominal=row.nominal,
        state=row.state,
        reason=row.reason,
        pushed=row.pushed,
    )


class SqlAttachmentStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def add(self, records: Sequence[AttachmentRecord], ciphertexts: dict[str, bytes]) -> None:
        if not records:
            return
        now = utc_now()
        async with self._sessions.begin() as session:
            await session.execute(
                insert(AttachmentRow)
                .values(
                    [
                        {
                            "node_id": r.node_id,
                            "alert_id": r.alert_id,
                            "part": r.part,
                            "origin_node": r.origin_node,
                            "sha256": r.sha256,
                            "size": r.size,
                            "nominal": r.nominal,
                            "state": r.state,
                            "reason": r.reason,
                            "ciphertext": ciphertexts.get(r.part),
                            "pushed": r.pushed,
                            "created_at": now,
                            "stored_at": now if r.part in ciphertexts else None,
                        }
                        for r in records
                    ]
                )
                .on_conflict_do_nothing(index_elements=["node_id", "alert_id", "part", "sha256"])
            )

    async def to_push(self, node_id: str, limit: int) -> list[tuple[AttachmentRecord, bytes]]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(AttachmentRow)
                    .where(
                        AttachmentRow.node_id == node_id,
                        AttachmentRow.origin_node == node_id,
                        AttachmentRow.state == "stored",
                        AttachmentRow.pushed.is_(False),
                    )
                    .order_by(AttachmentRow.created_at)
                    .limit(limit)
                )
            ).all()
        return [(_record(row), bytes(row.ciphertext or b"")) for row in rows]

    async def pushed(self, record: AttachmentRecord) -> None:
        await self._set(record, pushed=True)

    async def to_fetch(self, node_id: str, limit: int) -> list[AttachmentRecord]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(AttachmentRow)
                    .where(AttachmentRow.node_id == node_id, AttachmentRow.state == "pending")
                    .order_by(AttachmentRow.created_at)
                    .limit(limit)
                )
            ).all()
        return [_record(row) for row in rows]

    async def store(self, record: AttachmentRecord, ciphertext: bytes) -> None:
        await self._set(
            record,
            state="stored",
            ciphertext=ciphertext,
            stored_at=utc_now(),
        )

    async def refuse(self, record: AttachmentRecord, reason: str) -> None:
        await self._set(record, state="refused", reason=reason)

    async def of_alert(self, node_id: str, alert_id: str) -> list[AttachmentRecord]:
        async with self._sessions() as session:
            rows = (
                await session.scalars(
                    select(AttachmentRow).where(
                        AttachmentRow.node_id == node_id, AttachmentRow.alert_id == alert_id
                    )
                )
            ).all()
        return [_record(row) for row in rows]

    async def ciphertext(self, node_id: str, alert_id: str, part: str, sha256: str) -> bytes | None:
        async with self._sessions() as session:
            row = await session.get(AttachmentRow, (node_id, alert_id, part, sha256))
        if row is None or row.state != "stored" or row.ciphertext is None:
            return None
        return bytes(row.ciphertext)

    async def forget_nominal(self, node_id: str, alert_id: str) -> int:
        async with self._sessions.begin() as session:
            result = await session.execute(
                delete(AttachmentRow).where(
                    AttachmentRow.node_id == node_id,
                    AttachmentRow.alert_id == alert_id,
                    AttachmentRow.nominal.is_(True),
                )
            )
        return int(result.rowcount)  # type: ignore[attr-defined]

    async def _set(self, record: AttachmentRecord, **values: object) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(AttachmentRow)
                .where(
                    AttachmentRow.node_id == record.node_id,
                    AttachmentRow.alert_id == record.alert_id,
                    AttachmentRow.part == record.part,
                    AttachmentRow.sha256 == record.sha256,
                )
                .values(**values)
            )


class SqlUploadStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def create(self, record: UploadRecord, *, at: datetime) -> None:
        async with self._sessions.begin() as session:
            session.add(
                UploadRow(
                    id=record.id,
                    node_id=record.node_id,
                    principal_id=record.principal_id,
                    length=record.length,
                    received=record.received,
                    declared_type=record.declared_type,
                    nominal=record.nominal,
                    keep_location=record.keep_location,
                    state=record.state,
                    created_at=at,
                )
            )

    async def get(self, upload_id: str) -> UploadRecord | None:
        async with self._sessions() as session:
            row = await session.get(UploadRow, upload_id)
        if row is None:
            return None
        return UploadRecord(
            id=row.id,
            node_id=row.node_id,
            principal_id=row.principal_id,
            length=row.length,
            received=row.received,
            filename="",  # kept beside the bytes (``db.spool``), not here
            declared_type=row.declared_type,
            nominal=row.nominal,
            keep_location=row.keep_location,
            state=row.state,
            media_type=row.media_type,
            sha256=row.sha256,
            size=row.size,
        )

    async def advance(self, upload_id: str, expected: int, received: int) -> bool:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(UploadRow)
                .where(
                    UploadRow.id == upload_id,
                    UploadRow.received == expected,
                    UploadRow.state == "open",
                )
                .values(received=received)
            )
        return bool(result.rowcount)  # type: ignore[attr-defined]

    async def ready(self, upload_id: str, *, media_type: str, sha256: str, size: int) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(UploadRow)
                .where(UploadRow.id == upload_id)
                .values(state="ready", media_type=media_type, sha256=sha256, size=size)
            )

    async def used(self, upload_ids: Sequence[str]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(UploadRow).where(UploadRow.id.in_(list(upload_ids))).values(state="used")
            )

    async def stale(self, node_id: str, before: datetime) -> list[str]:
        async with self._sessions() as session:
            rows = await session.scalars(
                select(UploadRow.id).where(
                    UploadRow.node_id == node_id,
                    UploadRow.state.in_(("open", "ready")),
                    UploadRow.created_at < before,
                )
            )
            return list(rows.all())

    async def expire(self, upload_ids: Sequence[str]) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                update(UploadRow).where(UploadRow.id.in_(list(upload_ids))).values(state="expired")
            )
