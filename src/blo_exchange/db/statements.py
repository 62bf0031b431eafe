"""A node's own copy of the signed directory statements, and the directory they add up to.

``directory_statements`` (migration ``0004``) holds raw statement bytes, append-only for the
application. Nothing read from it is believed as such: :class:`SignedDirectory` verifies every
statement against the roots pinned on this machine's disk (``services.statements``) and answers
the ``Directory`` port from the result, so a key, node or agreement row planted in Postgres — in
the old directory tables or as an unsigned statement here — is never used.

The verified facts are cached for ``cache_seconds`` (2 s, like ``SqlDirectory``): a new statement,
or a revocation, takes effect at most that much later (one this process accepted, at once).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Identity, LargeBinary, Text, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Mapped, mapped_column

from blo_exchange.crypto.canonical import b64u_decode
from blo_exchange.crypto.keys import HpkeSuite, KemPublicKey, VerifyKey, public_key_record
from blo_exchange.crypto.statements import UnverifiedStatement
from blo_exchange.db.engine import SessionFactory
from blo_exchange.db.tables import TZ, Base
from blo_exchange.domain.directory import Agreement, Node, Principal
from blo_exchange.domain.ids import format_time
from blo_exchange.errors import InvalidStatement
from blo_exchange.ledger.entries import DirectoryState, KeyRecord
from blo_exchange.services.statements import (
    PrincipalLookup,
    TrustedDirectory,
    TrustedFacts,
    accept_statement,
    verify_statements,
)

__all__ = ["SignedDirectory", "SqlStatementStore", "StatementRow"]

log = logging.getLogger(__name__)


class StatementRow(Base):
    __tablename__ = "directory_statements"

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    raw_sha256: Mapped[str] = mapped_column(Text, unique=True)
    statement_id: Mapped[str] = mapped_column(Text)
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    received_at: Mapped[datetime] = mapped_column(TZ, server_default=func.now())


class SqlStatementStore:
    def __init__(self, sessions: SessionFactory) -> None:
        self._sessions = sessions

    async def add(self, raw: bytes) -> bool:
        """Keep ``raw`` (a well-formed statement; ``InvalidStatement`` otherwise); False when
        these exact bytes were already kept. Signatures are checked by whoever reads them."""
        statement = UnverifiedStatement.parse(raw)
        async with self._sessions() as session, session.begin():
            result = await session.execute(
                insert(StatementRow)
                .values(
                    raw_sha256=hashlib.sha256(raw).hexdigest(),
                    statement_id=statement.statement_id,
                    raw=raw,
                )
                .on_conflict_do_nothing(index_elements=["raw_sha256"])
                .returning(StatementRow.seq)
            )
            return result.first() is not None

    async def all(self) -> list[bytes]:
        async with self._sessions() as session:
            rows = await session.scalars(select(StatementRow.raw).order_by(StatementRow.seq))
            return [bytes(raw) for raw in rows.all()]


class SignedDirectory:
    """The ``Directory`` port from verified statements only (see the module docstring)."""

    def __init__(
        self,
        store: SqlStatementStore,
        roots: Mapping[str, VerifyKey],
        *,
        principals: PrincipalLookup,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._roots = dict(roots)
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._loaded_at: float | None = None
        """When the read the facts come from started."""
        self._generation = 0  # moved on by invalidate()
        self._loaded_generation = -1
        self._lock = asyncio.Lock()  # one read at a time
        self._behind: asyncio.Task[None] | None = None
        self._trusted = TrustedDirectory(verify_statements((), self._roots), principals=principals)
        self._verified: list[bytes] | None = None
        """The statements the facts were verified from, in the store's order."""

    async def refresh(self) -> TrustedFacts:
        """Read every statement now; verify them unless they are the very bytes verified last
        time (the facts are a function of the statements and the pinned roots only, and
        verifying them all every two seconds was most of an idle node's CPU; issue 14)."""
        async with self._lock:
            return await self._read()

    async def _read(self) -> TrustedFacts:
        """:meth:`refresh`'s read, under the lock."""
        started, generation = self._clock(), self._generation
        raws = await self._store.all()
        if raws != self._verified:
            facts = verify_statements(raws, self._roots)
            self._trusted.update(facts)
            self._verified = raws
        self._loaded_at, self._loaded_generation = started, generation
        return self._trusted.facts

    async def accept(self, raw: bytes) -> str:
        """A statement from the directory stream: (1) verified against this process's pinned
        roots, (2) kept in its own copy, (3) believed from the next read on. ``"stored"``,
        ``"known"`` (these bytes were kept already) or ``"refused"`` (logged, not kept)."""
        try:
            verified = accept_statement(raw, self._roots)
        except InvalidStatement as exc:
            log.warning("refused a directory statement", extra={"reason": exc.reason})
            return "refused"
        stored = await self._store.add(verified.raw)
        self.invalidate()
        return "stored" if stored else "known"

    def invalidate(self) -> None:
        """Read the statements again at the next question: the facts from a read that started
        before this are not served again."""
        self._generation += 1

    async def facts(self) -> TrustedFacts:
        """The facts from a read that started less than ``cache_seconds`` ago, and after the
        last :meth:`invalidate`.

        Past half that age they are read again in the background while they are still served,
        so a busy node does not wait for the directory. A question that must wait (the facts
        too old, or invalidated) waits for one read: when it gets its turn, a read that
        finished meanwhile answers it. Each waiting request used to read every statement again
        in turn: 18-26 reads in one second of the e2e bench at 124 alerts/s, and accepts held
        up to 1.3 s every two seconds (issue 14, stop 30).
        """
        age = self._age()
        if age is not None and age < self._cache_seconds:
            if age >= self._cache_seconds / 2:
                self._read_behind()
            return self._trusted.facts
        async with self._lock:
            age = self._age()
            if age is not None and age < self._cache_seconds:
                return self._trusted.facts  # read while this question waited its turn
            return await self._read()

    def _age(self) -> float | None:
        """Seconds since the read the facts come from started; None when they may not be
        served (never read, or invalidated since that read started)."""
        if self._loaded_at is None or self._loaded_generation != self._generation:
            return None
        return self._clock() - self._loaded_at

    def _read_behind(self) -> None:
        if self._lock.locked() or (self._behind is not None and not self._behind.done()):
            return  # a read is under way
        self._behind = asyncio.create_task(self._read_in_background(), name="directory-read")

    async def _read_in_background(self) -> None:
        try:
            async with self._lock:
                age = self._age()
                if age is None or age >= self._cache_seconds / 2:
                    await self._read()
        except Exception as exc:  # served on; a question past their age reads them itself
            log.warning("directory statements not read again: %s", type(exc).__name__)

    # --- the Directory port ---------------------------------------------------------------------

    async def node(self, node_id: str) -> Node:
        await self.facts()
        return await self._trusted.node(node_id)

    async def agreements(self) -> list[Agreement]:
        await self.facts()
        return await self._trusted.agreements()

    async def current_kem_key(self, agency_id: str, suite: HpkeSuite) -> KemPublicKey | None:
        await self.facts()
        return await self._trusted.current_kem_key(agency_id, suite)

    async def verify_keys(
        self, owner_kind: str, owner_id: str, at: datetime
    ) -> dict[str, VerifyKey]:
        await self.facts()
        return await self._trusted.verify_keys(owner_kind, owner_id, at)

    async def principal_by_token_hash(self, token_hash: bytes) -> Principal | None:
        return await self._trusted.principal_by_token_hash(token_hash)

    # --- the keys the ledger's readers believe (``ledger.ports.StatementKeys``) ---------------

    async def witness_keys(self) -> list[tuple[str, bytes]]:
        await self.facts()
        return await self._trusted.witness_keys()

    async def node_keys(self) -> dict[str, dict[str, Any]]:
        await self.facts()
        return await self._trusted.node_keys()

    async def statement_texts(self) -> list[str]:
        await self.facts()
        return await self._trusted.statement_texts()

    # --- for the ledger writer and GET /v1/directory ----------------------------------------

    async def directory_state(self) -> DirectoryState:
        """The keys and agreements the verified statements grant, for the ledger writer."""
        facts = (await self.facts()).facts
        return DirectoryState(
            keys=tuple(
                KeyRecord(
                    key_id=k.key_id,
                    owner_kind=k.owner_kind,
                    owner_id=k.owner_id,
                    owner_agency=k.agency or None,
                    alg=k.alg,
                    public=b64u_decode(k.public),
                    created_at=k.issued_at,
                    revoked_at=k.revoked_at,
                )
                for k in facts.keys
            ),
            agreements=tuple(facts.agreements.values()),
        )

    async def snapshot(self) -> dict[str, Any]:
        """What ``GET /v1/directory`` serves: the nodes, keys and agreements the verified
        statements grant, the pinned roots, and every verified statement as signed (its exact
        bytes, as text), so anyone can check them against the roots' fingerprints."""
        trusted = await self.facts()
        facts = trusted.facts
        return {
            "nodes": [n.model_dump(mode="json") for n in facts.nodes.values()],
            "keys": [
                k.record()
                | {
                    "owner_kind": k.owner_kind,
                    "owner_id": k.owner_id,
                    "agency": k.agency,
                    "signers": list(k.signers),
                    "created_at": format_time(k.issued_at),
                    "revoked_at": None if k.revoked_at is None else format_time(k.revoked_at),
                }
                for k in facts.keys
            ],
            "agreements": [a.model_dump(mode="json") for a in facts.agreements.values()],
            "pinned_roots": [
                {"agency": agency} | public_key_record(key) for agency, key in self._roots.items()
            ],
            "statements": [s.raw.decode() for s in trusted.statements],
        }
