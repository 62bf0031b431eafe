"""Where a node keeps its private keys on disk.

``<key_dir>/signing.key`` is the node's Ed25519 key; ``<key_dir>/agency/<key_id>.key`` are its
agency's HPKE decryption keys (every node of an agency holds a copy; several while a rotation's
grace period runs). Files are 0600 and the loader refuses looser ones. After a node key rotation
the previous signing key is kept as ``signing.<key_id>.key``, which nothing loads: it is there to
be restored if the rotation must be undone.

Agency keys are looked up again when an envelope names a key id the node does not hold, so a
key installed by ``blo-exchange directory rotate-agency-key`` is used without a restart. The
signing key is read once, at start: a node signs with a new key after a restart.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
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

__all__ = [
    "KemKeyring",
    "NodeKeys",
    "agency_key_path",
    "archived_signing_key_path",
    "create_node_keys",
    "load_node_keys",
    "signing_key_path",
]

log = logging.getLogger(__name__)


class KemKeyring(Mapping[str, KemPrivateKey]):
    """The agency's HPKE private keys in one folder, by key id; the folder is read again on a miss.

    A miss is rare and cheap: only an envelope whose signature verified, addressed to this agency,
    names a key id, so the folder (a handful of files) is listed again at most once per such
    envelope. Not rate-limited on purpose: a miss that skipped the look would reject the alert
    for good. Keys are only ever added while the node runs: a key file removed from the folder
    stays usable until the next start. A new file that can't be loaded (a wrong mode, say) is
    logged and skipped, and tried again on a later miss.
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._keys: dict[str, KemPrivateKey] = {}
        self._loaded: set[Path] = set()
        self.reload(strict=True)

    def reload(self, *, strict: bool = False) -> list[str]:
        """Load key files not loaded yet; the key ids added. ``strict``: raise on a bad file."""
        added = []
        for path in sorted(self._folder.glob("*.key")):
            if path in self._loaded:
                continue
            try:
                key = load_kem_key(path)
            except ConfigurationError:
                if strict:
                    raise
                log.warning("agency key file %s could not be loaded", path)
                continue
            self._loaded.add(path)
            if key.key_id not in self._keys:
                self._keys[key.key_id] = key
                added.append(key.key_id)
        if added and not strict:
            log.info("loaded agency key(s) %s", ", ".join(added))
        return added

    def __getitem__(self, key_id: str) -> KemPrivateKey:
        key = self._keys.get(key_id)
        if key is None:
            self.reload()
            key = self._keys.get(key_id)
        if key is None:
            raise KeyError(key_id)
        return key

    def __contains__(self, key_id: object) -> bool:
        return isinstance(key_id, str) and self.get(key_id) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)


@dataclass(frozen=True)
class NodeKeys:
    signing: SigningKey
    kem: KemKeyring


def signing_key_path(key_dir: Path) -> Path:
    return key_dir / "signing.key"


def archived_signing_key_path(key_dir: Path, key_id: str) -> Path:
    return key_dir / f"signing.{key_id}.key"


def agency_key_path(key_dir: Path, key_id: str) -> Path:
    return key_dir / "agency" / f"{key_id}.key"


def load_node_keys(key_dir: Path) -> NodeKeys:
    path = signing_key_path(key_dir)
    if not path.exists():
        raise ConfigurationError(f"no signing key at {path}: run `blo-exchange keys init`")
    kem = KemKeyring(key_dir / "agency")
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
