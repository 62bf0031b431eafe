"""Crypto-shredding a stored nominal part (crypto.retention): the stored form still verifies and
its case opens; the part opens only with the epoch key of its day; a destroyed key, a wrong key,
a moved row or a flipped bit open nothing."""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from blo_exchange.crypto.canonical import canonical_json, parse_canonical_json
from blo_exchange.crypto.envelope import RecipientKey, UnverifiedEnvelope, seal, seal_alert
from blo_exchange.crypto.files import FilePart
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.crypto.retention import (
    EpochKeys,
    SealedNominal,
    carries_nominal,
    join_nominal,
    nominal_readers,
    open_nominal,
    open_nominal_file,
    rewrap_nominal,
    seal_nominal,
    seal_nominal_file,
    split_nominal,
)
from blo_exchange.errors import ConfigurationError, InvalidEnvelope

ALERT_ID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
TJ, UZ = "tj-drug-control-agency", "uz-customs-committee"
DAY, LATER = date(2027, 1, 4), date(2027, 3, 5)
HEADER: dict[str, Any] = {
    "alert_id": ALERT_ID,
    "kind": "seizure",
    "border_pair": "KG-TJ",
    "origin_node": "blo-karamyk-kg",
    "origin_agency": "kg-border-service",
    "suite": HpkeSuite.X25519.value,
}


@pytest.fixture
def sealed() -> tuple[bytes, SigningKey, KemPrivateKey]:
    signer, kem = SigningKey.generate(), KemPrivateKey.generate(HpkeSuite.X25519)
    other = KemPrivateKey.generate(HpkeSuite.X25519)
    raw = seal(
        HEADER,
        {"case": b'{"case":1}', "nominal": b'{"name":"A. Person"}'},
        [
            RecipientKey(TJ, kem.public_key(), ("case", "nominal")),
            RecipientKey(UZ, other.public_key(), ("case",)),
        ],
        signer,
    )
    return raw, signer, kem


def test_split_stores_a_verifiable_envelope_whose_case_alone_opens(
    sealed: tuple[bytes, SigningKey, KemPrivateKey],
) -> None:
    raw, signer, kem = sealed
    assert nominal_readers(raw) == (TJ,)
    assert carries_nominal(raw)
    split = split_nominal(raw)
    assert split is not None
    stored, record = split
    keys = {signer.key_id: signer.verify_key()}
    verified = UnverifiedEnvelope.parse(stored).verify(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure", recipient_agency=TJ
    )
    assert verified.open(TJ, {kem.key_id: kem}).parts == {"case": b'{"case":1}'}
    assert split_nominal(stored) is None
    assert nominal_readers(stored) == ()
    # Joined again, it is the envelope as it came, nominal part and all.
    assert join_nominal(stored, record) == raw


def test_join_refuses_a_part_other_than_the_signed_one(
    sealed: tuple[bytes, SigningKey, KemPrivateKey],
) -> None:
    split = split_nominal(sealed[0])
    assert split is not None
    stored, record = split
    parts = parse_canonical_json(record)
    parts["nominal"]["sha256"] = "0" * 64
    with pytest.raises(InvalidEnvelope):
        join_nominal(stored, canonical_json(parts))
    with pytest.raises(InvalidEnvelope):  # a part the stored envelope does not have
        join_nominal(stored, canonical_json({"file-1": parse_canonical_json(record)["nominal"]}))
    with pytest.raises(InvalidEnvelope):
        join_nominal(stored, b"not json")


def test_a_record_kept_before_nominal_files_still_joins(
    sealed: tuple[bytes, SigningKey, KemPrivateKey],
) -> None:
    split = split_nominal(sealed[0])
    assert split is not None
    stored, record = split
    old_form = canonical_json(parse_canonical_json(record)["nominal"])
    assert join_nominal(stored, old_form) == sealed[0]


def test_a_nominal_files_card_goes_to_the_vault_with_the_block_and_a_case_files_stays() -> None:
    """A passport scan's card (its name, hash and thumbnail) is split off like the block: the
    stored envelope still verifies and names the file, but the agency key opens no card of it,
    and without the card the node serves no file (services.attachments)."""
    signer, kem = SigningKey.generate(), KemPrivateKey.generate(HpkeSuite.X25519)
    sealed = seal_alert(
        HEADER,
        {"case": b'{"case":1}'},
        [RecipientKey(TJ, kem.public_key(), ("case", "file-1", "file-2"))],
        signer,
        files=[
            FilePart(card=b'{"name":"photo.jpg"}', data=b"photo"),
            FilePart(card=b'{"name":"passport.pdf","thumbnail":"AA"}', data=b"scan", nominal=True),
        ],
    )
    assert nominal_readers(sealed.envelope) == (TJ,)
    assert carries_nominal(sealed.envelope)
    split = split_nominal(sealed.envelope)
    assert split is not None
    stored, record = split
    assert set(parse_canonical_json(record)) == {"file-2"}
    keys = {signer.key_id: signer.verify_key()}
    verified = UnverifiedEnvelope.parse(stored).verify(
        keys, subject_border_pair="KG-TJ", subject_kind="seizure", recipient_agency=TJ
    )
    assert verified.redacted_parts == ("file-2",)
    opened = verified.open(TJ, {kem.key_id: kem})
    assert set(opened.parts) == {"case", "file-1"}
    assert split_nominal(stored) is None
    assert join_nominal(stored, record) == sealed.envelope


def test_the_part_opens_only_with_its_days_key_for_its_alert() -> None:
    key, other = os.urandom(32), os.urandom(32)
    vault = seal_nominal(b"record", key, alert_id=ALERT_ID, day=DAY)
    assert open_nominal(vault, key, alert_id=ALERT_ID) == b"record"
    for epoch_key, alert_id in ((other, ALERT_ID), (key, "another-alert")):
        with pytest.raises(InvalidEnvelope):
            open_nominal(vault, epoch_key, alert_id=alert_id)
    with pytest.raises(InvalidEnvelope) as erased:
        open_nominal(vault, None, alert_id=ALERT_ID)
    assert getattr(erased.value, "reason", None) == "nominal_erased"
    # A row moved to another day (to dodge its erasure) does not open under that day's key.
    moved = SealedNominal(day=LATER, wrapped_key=vault.wrapped_key, sealed_part=vault.sealed_part)
    with pytest.raises(InvalidEnvelope):
        open_nominal(moved, key, alert_id=ALERT_ID)
    flipped = bytearray(vault.sealed_part)
    flipped[-1] ^= 1
    with pytest.raises(InvalidEnvelope):
        open_nominal(SealedNominal(DAY, vault.wrapped_key, bytes(flipped)), key, alert_id=ALERT_ID)


def test_a_nominal_file_opens_only_with_its_days_key_for_its_alert_and_part() -> None:
    key = os.urandom(32)
    vault = seal_nominal(b"record", key, alert_id=ALERT_ID, day=DAY)
    stored = seal_nominal_file(vault, key, alert_id=ALERT_ID, part="file-2", data=b"scan")
    assert b"scan" not in stored
    assert open_nominal_file(vault, key, alert_id=ALERT_ID, part="file-2", stored=stored) == b"scan"
    # Kept after an extension: the data key is the same, wrapped under the later day's key.
    later = os.urandom(32)
    kept = rewrap_nominal(vault, key, later, alert_id=ALERT_ID, day=LATER)
    kept_file = open_nominal_file(kept, later, alert_id=ALERT_ID, part="file-2", stored=stored)
    assert kept_file == b"scan"
    flipped = bytearray(stored)
    flipped[-1] ^= 1
    for epoch_key, alert_id, part, data in (
        (None, ALERT_ID, "file-2", stored),  # the key destroyed: erased
        (os.urandom(32), ALERT_ID, "file-2", stored),
        (key, "another-alert", "file-2", stored),
        (key, ALERT_ID, "file-1", stored),  # moved to another part
        (key, ALERT_ID, "file-2", bytes(flipped)),
    ):
        with pytest.raises(InvalidEnvelope):
            open_nominal_file(vault, epoch_key, alert_id=alert_id, part=part, stored=data)
    with pytest.raises(InvalidEnvelope):
        seal_nominal_file(vault, None, alert_id=ALERT_ID, part="file-2", data=b"scan")


def test_rewrap_moves_the_part_to_a_later_days_key() -> None:
    old, new = os.urandom(32), os.urandom(32)
    vault = seal_nominal(b"record", old, alert_id=ALERT_ID, day=DAY)
    kept = rewrap_nominal(vault, old, new, alert_id=ALERT_ID, day=LATER)
    assert kept.day == LATER
    assert kept.sealed_part == vault.sealed_part
    assert open_nominal(kept, new, alert_id=ALERT_ID) == b"record"
    with pytest.raises(InvalidEnvelope):
        open_nominal(kept, old, alert_id=ALERT_ID)
    with pytest.raises(InvalidEnvelope):
        rewrap_nominal(vault, None, new, alert_id=ALERT_ID, day=LATER)  # already destroyed


def test_epoch_key_files_are_private_and_destroyed(tmp_path: Path) -> None:
    keys = EpochKeys(tmp_path / "retention")
    assert keys.days() == []
    assert keys.get(DAY, create=False) is None
    key = keys.get(DAY, create=True)
    assert key is not None
    assert keys.get(DAY, create=False) == key
    path = tmp_path / "retention" / "2027-01-04.key"
    assert path.stat().st_mode & 0o777 == 0o600
    assert keys.days() == [DAY]
    assert keys.destroy(DAY) is True
    assert not path.exists()
    assert keys.get(DAY, create=False) is None
    assert keys.destroy(DAY) is False
    path.write_bytes(os.urandom(32))
    path.chmod(0o644)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        keys.get(DAY, create=False)


def test_an_epoch_key_is_read_once_and_never_outlives_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = EpochKeys(tmp_path / "retention")
    key = keys.get(DAY, create=True)
    reads: list[Path] = []
    read_bytes = Path.read_bytes

    def counted(self: Path) -> bytes:
        reads.append(self)
        return read_bytes(self)

    monkeypatch.setattr(Path, "read_bytes", counted)
    assert [keys.get(DAY, create=False) for _ in range(3)] == [key] * 3
    assert len(reads) == 1
    path = tmp_path / "retention" / "2027-01-04.key"
    # Replaced behind the node's back (a restore, another process): the new file is read.
    other = os.urandom(32)
    path.unlink()
    path.write_bytes(other)
    path.chmod(0o600)
    assert keys.get(DAY, create=False) == other
    # Removed by anyone, not only through destroy(): the copy in memory is not used again.
    path.unlink()
    assert keys.get(DAY, create=False) is None
    # Made readable by others: refused, though the bytes are the ones read before.
    path.write_bytes(other)
    path.chmod(0o600)
    assert keys.get(DAY, create=False) == other
    path.chmod(0o640)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        keys.get(DAY, create=False)
