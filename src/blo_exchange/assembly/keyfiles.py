"""Where a node keeps its private keys on disk.

``<key_dir>/signing.key`` is the node's Ed25519 key; ``<key_dir>/agency/<key_id>.key`` are its
agency's HPKE decryption keys (every node of an agency holds a copy; several while a rotation's
grace period runs). Files are 0600 and the loader refuses looser ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from blo_exchange.crypto.keys import (
    HpkeSuite,
    KemPrivateKey,
    SigningKey,
    load_kem_key,
    load_signing_key,
    save_private_key,
)
from blo_exchange.errors import ConfigurationError

__all__ = ["NodeKeys", "agency_key_path", "create_node_keys", "load_node_keys"]


@dataclass(frozen=True)
class NodeKeys:
    signing: SigningKey
    kem: dict[str, KemPrivateKey]


def signing_key_path(key_dir: Path) -> Path:
    return key_dir / "signing.key"


def agency_key_path(key_dir: Path, key_id: str) -> Path:
    return key_dir / "agency" / f"{key_id}.key"


def load_node_keys(key_dir: Path) -> NodeKeys:
    path = signing_key_path(key_dir)
    if not path.exists():
        raise ConfigurationError(f"no signing key at {path}: run `blo-exchange keys init`")
    kem = {
        k.key_id: k for k in (load_kem_key(p) for p in sorted((key_dir / "agency").glob("*.key")))
    }
    if not kem:
        raise ConfigurationError(f"no agency decryption key under {key_dir / 'agency'}")
    return NodeKeys(signing=load_signing_key(path), kem=kem)


def create_node_keys(
    key_dir: Path, *, agency_key: KemPrivateKey | None = None, suite: HpkeSuite | None = None
) -> NodeKeys:
    """A new signing key, plus the agency's key (given, or new for ``suite``). Never overwrites."""
    (key_dir / "agency").mkdir(parents=True, exist_ok=True, mode=0o700)
    key_dir.chmod(0o700)
    path = signing_key_path(key_dir)
    signing = load_signing_key(path) if path.exists() else SigningKey.generate()
    if not path.exists():
        save_private_key(path, signing)
    if agency_key is None:
        agency_key = KemPrivateKey.generate(suite or HpkeSuite.MLKEM768_X25519)
    kem_path = agency_key_path(key_dir, agency_key.key_id)
    if not kem_path.exists():
        save_private_key(kem_path, agency_key)
    return load_node_keys(key_dir)
