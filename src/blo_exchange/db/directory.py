"""The directory in Postgres: reading it for nodes (the ``Directory`` port) and writing it for the
CLI (agencies, nodes, keys, agreements, principals).

Reads are cached for a few seconds: every request needs agreements and keys, and the directory
changes rarely. A revoked token or key is refused at the latest ``cache_seconds`` later.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from blo_exchange.crypto.canonical import b64u_encode
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, VerifyKey
from blo_exchange.db.engine import SessionFactory, autocommit, engine_of
from blo_exchange.db.grouped import retrieve_outcome
from blo_exchange.db.tables import (
    AgencyRow,
    AgreementRow,
    NodeRow,
    PrincipalRow,
    PublicKeyRow,
)
from blo_exchange.domain.directory import Agency, Agreement, Node, Principal, Role
from blo_exchange.domain.ids import format_time
from blo_exchange.errors import Conflict, NotFound
from blo_exchange.ledger.entries import DirectoryState, KeyRecord

__all__ = ["SqlDirectory"]

T = TypeVar("T")


REFRESHING_AT_ONCE = 2
"""Background reloads (refresh ahead) running at once. A hundred analysts' live streams each
re-check their principal about every second: unbounded, their reloads took a pool connection
each at the same moment, past the pool's size, and every second the overflow was connected
and closed again (issue 14)."""

# A principal by token hash, on every request and every live stream's re-check: one statement
# on an autocommit connection, not an ORM session (its set-up cost more than the query).
_PRINCIPAL_SQL = (
    "SELECT id, role, node_id, agency_id, label, created_at, expires_at, revoked_at,"
    " device_certificate FROM principals WHERE token_hash = $1"
)


class SqlDirectory:
    def __init__(self, sessions: SessionFactory, *, cache_seconds: float = 2.0) -> None:
        self._sessions = sessions
        self._cache_seconds = cache_seconds
        self._cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
        self._loading: dict[tuple[Any, ...], asyncio.Task[Any]] = {}
        self._generation = 0
        self._refreshing = asyncio.Semaphore(REFRESHING_AT_ONCE)
        self._reads: AsyncEngine | None = None

    async def _cached(self, key: tuple[Any, ...], load: Callable[[], Awaitable[T]]) -> T:
        """One load in flight per key, the others await it (no stampede when an entry expires);
        an entry past half its life is reloaded in the background while it is still served, so a
        busy node does not wait for the directory at all. An entry is never older than
        ``cache_seconds``: its age counts from when its load started."""
        hit = self._cache.get(key)
        if hit is not None:
            age = time.monotonic() - hit[0]
            if age < self._cache_seconds:
                if age >= self._cache_seconds / 2:
                    self._load(key, load, behind=True)
                value: T = hit[1]
                return value
        loaded: T = await asyncio.shield(self._load(key, load))
        return loaded

    def _load(
        self, key: tuple[Any, ...], load: Callable[[], Awaitable[T]], *, behind: bool = False
    ) -> asyncio.Task[Any]:
        task = self._loading.get(key)
        if task is not None:
            return task
        generation = self._generation

        async def run() -> T:
            try:
                # A reload behind a served entry waits its turn (REFRESHING_AT_ONCE); its age
                # counts from when it starts reading.
                async with self._refreshing if behind else contextlib.nullcontext():
                    started = time.monotonic()
                    value = await load()
                if generation == self._generation:  # not invalidated meanwhile
                    self._cache[key] = (started, value)
                return value
            finally:
                if self._loading.get(key) is task:
                    del self._loading[key]

        task = asyncio.create_task(run())
        # A background refresh that failed is retried by the next caller; its error is theirs.
        task.add_done_callback(retrieve_outcome)
        self._loading[key] = task
        return task

    def invalidate(self) -> None:
        self._generation += 1
        self._cache.clear()
        self._loading.clear()

    # --- the Directory port ---------------------------------------------------------------------

    async def node(self, node_id: str) -> Node:
        async def load() -> Node:
            async with self._sessions() as session:
                row = await session.get(NodeRow, node_id)
            if row is None:
                raise NotFound(f"unknown node {node_id}")
            return _node(row)

        return await self._cached(("node", node_id), load)

    async def agreements(self) -> list[Agreement]:
        async def load() -> list[Agreement]:
            async with self._sessions() as session:
                rows = (await session.scalars(select(AgreementRow))).all()
            return [_agreement(r) for r in rows]

        return await self._cached(("agreements",), load)

    async def current_kem_key(self, agency_id: str, suite: HpkeSuite) -> KemPublicKey | None:
        async def load() -> KemPublicKey | None:
            async with self._sessions() as session:
                row = await session.scalar(
                    select(PublicKeyRow)
                    .where(
                        PublicKeyRow.owner_kind == "agency",
                        PublicKeyRow.owner_id == agency_id,
                        PublicKeyRow.alg == suite.value,
                        PublicKeyRow.revoked_at.is_(None),
                    )
                    .order_by(PublicKeyRow.created_at.desc(), PublicKeyRow.key_id)
                    .limit(1)
                )
            if row is None:
                return None
            return KemPublicKey(key_id=row.key_id, suite=suite, public=row.public)

        return await self._cached(("kem", agency_id, suite.value), load)

    async def verify_keys(
        self, owner_kind: str, owner_id: str, at: datetime
    ) -> dict[str, VerifyKey]:
        rows = await self._cached(
            ("sign", owner_kind, owner_id), lambda: self._keys(owner_kind, owner_id)
        )
        return {
            r.key_id: VerifyKey(key_id=r.key_id, public=r.public)
            for r in rows
            if r.alg == "Ed25519" and (r.revoked_at is None or r.revoked_at > at)
        }

    async def _keys(self, owner_kind: str, owner_id: str) -> list[PublicKeyRow]:
        async with self._sessions() as session:
            return list(
                (
                    await session.scalars(
                        select(PublicKeyRow).where(
                            PublicKeyRow.owner_kind == owner_kind, PublicKeyRow.owner_id == owner_id
                        )
                    )
                ).all()
            )

    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        async def load() -> Principal | None:
            if self._reads is None:
                self._reads = autocommit(engine_of(self._sessions))
            async with self._reads.connect() as conn:
                row = (await conn.exec_driver_sql(_PRINCIPAL_SQL, (token_hash,))).first()
            return None if row is None else _principal(row)

        return await self._cached(("principal", token_hash), load)

    # --- reads for GET /v1/directory -------------------------------------------------------

    async def snapshot(self) -> dict[str, Any]:
        """Everything public: agencies, nodes, public keys (with revocations), agreements."""
        async with self._sessions() as session:
            agencies = (await session.scalars(select(AgencyRow).order_by(AgencyRow.id))).all()
            nodes = (await session.scalars(select(NodeRow).order_by(NodeRow.id))).all()
            keys = (
                await session.scalars(
                    select(PublicKeyRow).order_by(PublicKeyRow.owner_id, PublicKeyRow.key_id)
                )
            ).all()
            agreements = (
                await session.scalars(select(AgreementRow).order_by(AgreementRow.id))
            ).all()
        return {
            "agencies": [{"id": a.id, "country": a.country, "name": a.name} for a in agencies],
            "nodes": [_node(n).model_dump(mode="json") for n in nodes],
            "keys": [
                {
                    "key_id": k.key_id,
                    "owner_kind": k.owner_kind,
                    "owner_id": k.owner_id,
                    "alg": k.alg,
                    "public": b64u_encode(k.public),
                    "created_at": format_time(k.created_at),
                    "revoked_at": None if k.revoked_at is None else format_time(k.revoked_at),
                }
                for k in keys
            ],
            "agreements": [_agreement(a).model_dump(mode="json") for a in agreements],
        }

    async def directory_state(self) -> DirectoryState:
        """Keys and agreements as they are now, uncached, for the ledger writer's change log.

        A full read in one transaction: the directory is small (tens of rows), and the writer
        remembers which changes it already recorded, so nothing is compared row by row here.
        """
        async with self._sessions() as session:
            agencies = dict((await session.execute(select(NodeRow.id, NodeRow.agency_id))).all())
            keys = (await session.scalars(select(PublicKeyRow))).all()
            agreements = (await session.scalars(select(AgreementRow))).all()
        return DirectoryState(
            keys=tuple(
                KeyRecord(
                    key_id=k.key_id,
                    owner_kind=k.owner_kind,
                    owner_id=k.owner_id,
                    owner_agency=agencies.get(k.owner_id)
                    if k.owner_kind in ("node", "witness")
                    else None,
                    alg=k.alg,
                    public=bytes(k.public),
                    created_at=k.created_at,
                    revoked_at=k.revoked_at,
                )
                for k in keys
            ),
            agreements=tuple(_agreement(a) for a in agreements),
        )

    # --- writes, for the CLI ---------------------------------------------------------------

    async def add_agency(self, agency: Agency) -> None:
        async with self._sessions.begin() as session:
            await session.execute(
                insert(AgencyRow)
                .values(id=agency.id, country=agency.country, name=agency.name)
                .on_conflict_do_update(index_elements=["id"], set_={"name": agency.name})
            )
        self.invalidate()

    async def add_node(self, node: Node) -> None:
        values = {
            "id": node.id,
            "agency_id": node.agency_id,
            "border_pairs": list(node.border_pairs),
            "crossing_points": list(node.crossing_points),
            "url": node.url,
        }
        async with self._sessions.begin() as session:
            await session.execute(
                insert(NodeRow)
                .values(**values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )
        self.invalidate()

    async def add_key(
        self, *, key_id: str, owner_kind: str, owner_id: str, alg: str, public: bytes
    ) -> bool:
        """Register a public key; False when that key id is already registered."""
        async with self._sessions.begin() as session:
            result = await session.execute(
                insert(PublicKeyRow)
                .values(
                    key_id=key_id, owner_kind=owner_kind, owner_id=owner_id, alg=alg, public=public
                )
                .on_conflict_do_nothing(index_elements=["key_id"])
                .returning(PublicKeyRow.key_id)
            )
            added = result.first() is not None
        self.invalidate()
        return added

    async def revoke_key(self, key_id: str, at: datetime) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(PublicKeyRow)
                .where(PublicKeyRow.key_id == key_id, PublicKeyRow.revoked_at.is_(None))
                .values(revoked_at=at)
                .returning(PublicKeyRow.key_id)
            )
            if result.first() is None:
                raise NotFound(f"no unrevoked key {key_id}")
        self.invalidate()

    async def put_agreement(self, agreement: Agreement) -> None:
        values = {
            "id": agreement.id,
            "title": agreement.title,
            "parties": list(agreement.parties),
            "border_pairs": list(agreement.border_pairs),
            "kinds": [str(k) for k in agreement.kinds],
            "max_tlp": agreement.max_tlp.value,
            "nominal": agreement.nominal,
            "valid_from": agreement.valid_from,
            "valid_until": agreement.valid_until,
            "memorandum_ref": agreement.memorandum_ref,
            "nominal_retention_days": agreement.nominal_retention_days,
            "nominal_retention_max_days": agreement.nominal_retention_max_days,
        }
        async with self._sessions.begin() as session:
            await session.execute(
                insert(AgreementRow)
                .values(**values)
                .on_conflict_do_update(index_elements=["id"], set_=values)
            )
        self.invalidate()

    async def add_principal(self, principal: Principal, token_hash: bytes) -> None:
        async with self._sessions.begin() as session:
            session.add(
                PrincipalRow(
                    id=principal.id,
                    token_hash=token_hash,
                    role=principal.role.value,
                    node_id=principal.node_id,
                    agency_id=principal.agency_id,
                    label=principal.label,
                    created_at=principal.created_at,
                    expires_at=principal.expires_at,
                    revoked_at=principal.revoked_at,
                    device_certificate=principal.device_certificate,
                )
            )
        self.invalidate()

    async def bind_device_certificate(self, principal_id: str, fingerprint: str | None) -> None:
        """Bind ``principal_id`` to the device certificate with this SHA-256 (None: unbind)."""
        try:
            async with self._sessions.begin() as session:
                result = await session.execute(
                    update(PrincipalRow)
                    .where(PrincipalRow.id == principal_id)
                    .values(device_certificate=fingerprint)
                    .returning(PrincipalRow.id)
                )
                if result.first() is None:
                    raise NotFound(f"no principal {principal_id}")
        except IntegrityError as exc:
            raise Conflict("this certificate is bound to another principal") from exc
        self.invalidate()

    async def revoke_principal(self, principal_id: str, at: datetime) -> None:
        async with self._sessions.begin() as session:
            result = await session.execute(
                update(PrincipalRow)
                .where(PrincipalRow.id == principal_id, PrincipalRow.revoked_at.is_(None))
                .values(revoked_at=at)
                .returning(PrincipalRow.id)
            )
            if result.first() is None:
                raise NotFound(f"no active principal {principal_id}")
        self.invalidate()

    async def principals(self) -> Sequence[Principal]:
        async with self._sessions() as session:
            rows = (await session.scalars(select(PrincipalRow).order_by(PrincipalRow.id))).all()
        return [_principal(r) for r in rows]


def _node(row: NodeRow) -> Node:
    return Node(
        id=row.id,
        agency_id=row.agency_id,
        border_pairs=tuple(row.border_pairs),
        crossing_points=tuple(row.crossing_points),
        url=row.url,
    )


def _agreement(row: AgreementRow) -> Agreement:
    return Agreement.model_validate(
        {
            "id": row.id,
            "title": row.title,
            "parties": tuple(row.parties),
            "border_pairs": tuple(row.border_pairs),
            "kinds": tuple(row.kinds),
            "max_tlp": row.max_tlp,
            "nominal": row.nominal,
            "valid_from": row.valid_from,
            "valid_until": row.valid_until,
            "memorandum_ref": row.memorandum_ref,
            "nominal_retention_days": row.nominal_retention_days,
            "nominal_retention_max_days": row.nominal_retention_max_days,
        }
    )


def _principal(row: Any) -> Principal:
    """A principals row (the ORM's, or a statement's row with the same columns)."""
    return Principal(
        id=row.id,
        role=Role(row.role),
        node_id=row.node_id,
        agency_id=row.agency_id,
        label=row.label,
        created_at=row.created_at,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        device_certificate=row.device_certificate,
    )
