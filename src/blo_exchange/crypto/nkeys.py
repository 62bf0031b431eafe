"""NATS user nkeys: the Ed25519 identities nodes and the ledger writer connect to NATS with.

The server config names each user by its public nkey (``U…``); the process proves it holds the
seed (``SU…``) by signing the server's nonce (nats-py does that with the ``nkeys`` package).
"""

from __future__ import annotations

import os
from pathlib import Path

import nkeys

from blo_exchange.crypto.secretfile import write_private_file

__all__ = ["new_user_seed", "public_nkey", "write_seed_file"]


def new_user_seed(rng: bytes | None = None) -> str:
    """A fresh user seed (``SU…``), from 32 random bytes (or the given ones, for tests)."""
    raw = rng if rng is not None else os.urandom(32)
    return bytes(nkeys.encode_seed(raw, nkeys.PREFIX_BYTE_USER)).decode("ascii")


def public_nkey(seed: str) -> str:
    """The user's public nkey (``U…``) for a seed."""
    keypair = nkeys.from_seed(bytearray(seed.encode("ascii")))
    try:
        return bytes(keypair.public_key).decode("ascii")
    finally:
        keypair.wipe()


def write_seed_file(path: Path, seed: str) -> None:
    """Write a seed 0600, atomically; nats-py reads it with ``nkeys_seed=path``."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private_file(path, (seed + "\n").encode("ascii"))
