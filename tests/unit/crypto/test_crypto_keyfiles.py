"""A node's agency keyring: new key files are picked up on a miss, bad ones never break it."""

from __future__ import annotations

from pathlib import Path

import pytest

from blo_exchange.crypto.keyfiles import agency_key_path, create_node_keys, load_node_keys
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, save_private_key
from blo_exchange.errors import ConfigurationError


def test_a_key_installed_while_running_is_found_on_a_miss(tmp_path: Path) -> None:
    keys = create_node_keys(tmp_path, suite=HpkeSuite.X25519)
    (old_id,) = list(keys.kem)
    new = KemPrivateKey.generate(HpkeSuite.X25519)
    assert keys.kem.get(new.key_id) is None
    save_private_key(agency_key_path(tmp_path, new.key_id), new)
    assert keys.kem[new.key_id].key_id == new.key_id
    assert sorted(keys.kem) == sorted([old_id, new.key_id])
    assert old_id in keys.kem


def test_a_loose_key_file_is_refused_at_start_and_skipped_later(tmp_path: Path) -> None:
    keys = create_node_keys(tmp_path, suite=HpkeSuite.X25519)
    loose = KemPrivateKey.generate(HpkeSuite.X25519)
    path = agency_key_path(tmp_path, loose.key_id)
    save_private_key(path, loose)
    path.chmod(0o644)
    assert keys.kem.get(loose.key_id) is None  # logged and skipped: the node keeps running
    path.chmod(0o600)
    assert keys.kem[loose.key_id].key_id == loose.key_id  # tried again on the next miss
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="0600"):
        load_node_keys(tmp_path)
