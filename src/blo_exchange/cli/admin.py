"""Directory administration used by the CLI: principals, public keys, key rotation.

Key rotation, step by step (the ledger writer records each directory change on its own):

- An agency's HPKE key (:func:`rotate_agency_key`): (1) a new key is generated; (2) it is written
  0600 into ``agency/`` of every key directory given, one per node of the agency, before anyone
  can seal to it; (3) its public key is registered. Within the directory cache's few seconds,
  every node seals new alerts to it (the newest unrevoked key of the suite), and the agency's
  nodes open them (they look for new key files when an envelope names a key id they lack). The
  old key files stay: envelopes sealed to the old key, on the bus or in inboxes, still open.
  Revoking the old public key afterwards only stops others from sealing to it. Nodes on other
  machines: run it with ``--no-register`` where the key directories are reachable, copy the new
  file (0600) into each other node's ``agency/``, then ``directory register-keys`` the printed
  public key.
- A node's Ed25519 key (:func:`rotate_node_key`): (1) a new key is generated; (2) its public key
  is registered, so it verifies before it signs anything; (3) the old ``signing.key`` is kept as
  ``signing.<old key id>.key`` and the new one takes its place. The node signs with it after its
  next restart. Once it has restarted (and after the grace period), revoke the old key with
  ``directory revoke-key OLD --at TIME``: envelopes it signs after TIME are rejected.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from blo_exchange.config import Settings
from blo_exchange.crypto.keyfiles import (
    agency_key_path,
    archived_signing_key_path,
    signing_key_path,
)
from blo_exchange.crypto.keys import (
    HpkeSuite,
    KemPrivateKey,
    KemPublicKey,
    SigningKey,
    VerifyKey,
    load_signing_key,
    public_key_from_record,
    save_private_key,
)
from blo_exchange.db.directory import SqlDirectory
from blo_exchange.db.engine import create_engine, session_factory
from blo_exchange.domain.directory import Principal, Role
from blo_exchange.errors import ConfigurationError, NotFound
from blo_exchange.services.auth import certificate_credential, hash_token, new_token

__all__ = [
    "NodeKeyRotation",
    "create_principal",
    "register_public_keys",
    "rotate_agency_key",
    "rotate_node_key",
    "with_directory",
]

T = TypeVar("T")


async def create_principal(
    settings: Settings,
    *,
    role: str,
    label: str,
    node_id: str | None,
    agency_id: str | None,
    expires_days: int | None,
    certificate_fingerprint: str | None = None,
    device_certificate: str | None = None,
) -> str:
    """Register a principal and return its token (the only time it is ever visible). With
    ``certificate_fingerprint`` that certificate is the credential (no token); with
    ``device_certificate`` the token is bound to that certificate (both needed)."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        directory = SqlDirectory(session_factory(engine))
        if node_id is not None and agency_id is None:
            agency_id = (await directory.node(node_id)).agency_id
        now = datetime.now(UTC)
        parsed = Role(role)
        # A bearer token, or, for mutual TLS, the client certificate's fingerprint as credential.
        token = (
            new_token()
            if certificate_fingerprint is None
            else certificate_credential(certificate_fingerprint)
        )
        await directory.add_principal(
            Principal(
                id=f"{parsed.value}-{secrets.token_hex(6)}",
                role=parsed,
                node_id=node_id,
                agency_id=agency_id,
                label=label,
                created_at=now,
                expires_at=None if expires_days is None else now + timedelta(days=expires_days),
                revoked_at=None,
                device_certificate=certificate_fingerprint or device_certificate,
            ),
            hash_token(token),
        )
        return token
    finally:
        await engine.dispose()


async def with_directory(settings: Settings, action: Callable[[SqlDirectory], Awaitable[T]]) -> T:
    """Run one directory action on a short-lived connection pool."""
    engine = create_engine(settings.database_url.get_secret_value(), pool_size=1)
    try:
        return await action(SqlDirectory(session_factory(engine)))
    finally:
        await engine.dispose()


async def register_public_keys(
    directory: SqlDirectory, *, owner_kind: str, owner_id: str, records: list[dict[str, Any]]
) -> list[str]:
    """Register the records `blo-exchange keys init` printed; returns the key ids added."""
    added = []
    for record in records:
        key = public_key_from_record(record)
        alg = "Ed25519" if isinstance(key, VerifyKey) else key.suite.value
        if await directory.add_key(
            key_id=key.key_id, owner_kind=owner_kind, owner_id=owner_id, alg=alg, public=key.public
        ):
            added.append(key.key_id)
    return added


async def rotate_agency_key(
    directory: SqlDirectory,
    *,
    agency_id: str,
    key_dirs: Sequence[Path],
    suite: HpkeSuite = HpkeSuite.MLKEM768_X25519,
    register: bool = True,
) -> KemPublicKey:
    """A new HPKE key for ``agency_id``, installed in every node key directory given, then
    registered (unless ``register`` is false: nodes this machine can't reach get a copy of the
    file first, and the key is registered after); returns its public key. The old keys stay
    installed and registered."""
    agencies = {a["id"] for a in (await directory.snapshot())["agencies"]}
    if agency_id not in agencies:
        raise NotFound(f"unknown agency {agency_id}")
    if not key_dirs:
        raise ConfigurationError("name the key directory of every node of the agency")
    for key_dir in key_dirs:
        if not signing_key_path(key_dir).exists():
            raise ConfigurationError(f"{key_dir} is not a node key directory (no signing.key)")
    # (1) Generate; (2) install everywhere first, so no envelope is sealed to a key some node
    # of the agency lacks; (3) only then publish it.
    key = KemPrivateKey.generate(suite)
    for key_dir in key_dirs:
        (key_dir / "agency").mkdir(mode=0o700, exist_ok=True)
        save_private_key(agency_key_path(key_dir, key.key_id), key)
    public = key.public_key()
    if register:
        await directory.add_key(
            key_id=public.key_id,
            owner_kind="agency",
            owner_id=agency_id,
            alg=suite.value,
            public=public.public,
        )
    return public


@dataclass(frozen=True)
class NodeKeyRotation:
    old_key_id: str
    new_key_id: str
    archived: Path


async def rotate_node_key(
    directory: SqlDirectory, *, node_id: str, key_dir: Path
) -> NodeKeyRotation:
    """A new signing key for ``node_id`` in ``key_dir``: registered first, then put in place of
    ``signing.key``, whose old key is kept as ``signing.<old key id>.key``."""
    await directory.node(node_id)  # NotFound for an unknown node
    path = signing_key_path(key_dir)
    old = load_signing_key(path)
    registered = {
        k["key_id"] for k in (await directory.snapshot())["keys"] if k["owner_id"] == node_id
    }
    if old.key_id not in registered:
        raise ConfigurationError(f"{path} does not hold a registered key of node {node_id}")
    new = SigningKey.generate()
    verify_key = new.verify_key()
    # (1) Keep the old key; (2) register the new one, so it verifies before it signs anything;
    # (3) swap it in (atomically: a crash leaves the old or the new file, never neither).
    archived = archived_signing_key_path(key_dir, old.key_id)
    save_private_key(archived, old)
    await directory.add_key(
        key_id=verify_key.key_id,
        owner_kind="node",
        owner_id=node_id,
        alg="Ed25519",
        public=verify_key.public,
    )
    save_private_key(path, new)
    return NodeKeyRotation(old_key_id=old.key_id, new_key_id=new.key_id, archived=archived)
