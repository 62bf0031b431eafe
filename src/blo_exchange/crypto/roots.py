"""Agency root keys and the pinned-roots file each node and ledger writer reads from its own disk.

An agency's root key signs its directory statements; it is created and kept off the nodes
(``blo-exchange agency init-root``), in a 0600 file on the administrator's machine. Its
fingerprint is its key id (32 hex characters of SHA-256 over the public key, see
``keys.key_id_for``): that is what agencies exchange in the MoU annex and what a pinned-roots file
holds::

    {"v": 1, "roots": [{"agency": "kg-border-service", "key_id": "...", "alg": "Ed25519",
                        "public": "<base64url>"}, ...]}

The file is never read from a database: whoever runs Postgres cannot change what a node trusts.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from blo_exchange.crypto.canonical import canonical_json, parse_canonical_json
from blo_exchange.crypto.keys import (
    SigningKey,
    VerifyKey,
    load_signing_key,
    public_key_from_record,
    public_key_record,
    save_private_key,
)
from blo_exchange.crypto.secretfile import write_private_file
from blo_exchange.errors import ConfigurationError

__all__ = ["create_root_key", "load_pinned_roots", "load_root_key", "write_pinned_roots"]

_VERSION: Final = 1


def create_root_key(path: Path) -> SigningKey:
    """A new Ed25519 root key, written to ``path`` (0600, atomically); refuses to overwrite."""
    if Path(path).exists():
        raise ConfigurationError(f"{path} exists; a root key is never overwritten")
    Path(path).parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    key = SigningKey.generate()
    save_private_key(Path(path), key)
    return key


def load_root_key(path: Path) -> SigningKey:
    return load_signing_key(Path(path))


def write_pinned_roots(path: Path, roots: Mapping[str, VerifyKey]) -> None:
    """Write the pinned roots of ``roots`` (agency -> root public key)."""
    document: dict[str, Any] = {
        "v": _VERSION,
        "roots": [{"agency": agency} | public_key_record(key) for agency, key in roots.items()],
    }
    write_private_file(Path(path), canonical_json(document) + b"\n")


def load_pinned_roots(path: Path) -> dict[str, VerifyKey]:
    """Agency -> pinned root key. ``ConfigurationError`` for a missing or malformed file, a
    non-Ed25519 key, a key id that does not match its key, or an agency pinned twice."""
    try:
        document = parse_canonical_json(Path(path).read_bytes().rstrip(b"\n"))
        if not isinstance(document, dict) or document.get("v") != _VERSION:
            raise ValueError("not a version 1 pinned-roots file")
        roots: dict[str, VerifyKey] = {}
        for entry in document["roots"]:
            agency = entry["agency"]
            key = public_key_from_record({k: v for k, v in entry.items() if k != "agency"})
            if not isinstance(agency, str) or not isinstance(key, VerifyKey):
                raise ValueError("a root is an agency's Ed25519 key")
            if agency in roots:
                raise ValueError(f"agency {agency} is pinned twice")
            roots[agency] = key
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"pinned roots file {path} is unusable: {exc}") from None
    return roots
