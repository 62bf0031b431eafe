"""Nominal files at a recipient (services.attachments with fakes): served only with their card,
kept through the retention vault, never stored once their retention ended, and deleted by the
erasure listener; case files are untouched by all of it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import pytest

from blo_exchange.crypto.canonical import canonical_json
from blo_exchange.crypto.envelope import (
    OpenedEnvelope,
    RecipientKey,
    UnverifiedEnvelope,
    redact,
    seal_alert,
)
from blo_exchange.crypto.files import FilePart
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.domain.directory import Node
from blo_exchange.errors import AttachmentErased
from blo_exchange.services.attachments import AttachmentService
from blo_exchange.services.ports import AttachmentRecord, Fetched
from tests.unit.services.world import World

ALERT = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
TJ, AGENCY = "blo-karamyk-tj", "tj-drug-control-agency"
HEADER: dict[str, Any] = {
    "alert_id": ALERT,
    "kind": "seizure",
    "border_pair": "KG-TJ",
    "origin_node": "blo-karamyk-kg",
    "origin_agency": "kg-border-service",
    "suite": HpkeSuite.X25519.value,
}
CARD = canonical_json({"name": "passport.jpg", "type": "image/jpeg", "thumbnail": "_9j_"})


@dataclass
class Store:
    rows: dict[str, tuple[AttachmentRecord, bytes | None]] = field(default_factory=dict)
    forgotten: list[str] = field(default_factory=list)

    async def add(self, records: Sequence[AttachmentRecord], ciphertexts: dict[str, bytes]) -> None:
        for r in records:
            self.rows.setdefault(r.part, (r, ciphertexts.get(r.part)))

    async def to_fetch(self, node_id: str, limit: int) -> list[AttachmentRecord]:
        return [r for r, _ in self.rows.values() if r.state == "pending"][:limit]

    async def store(self, record: AttachmentRecord, ciphertext: bytes) -> None:
        self.rows[record.part] = (replace(record, state="stored"), ciphertext)

    async def refuse(self, record: AttachmentRecord, reason: str) -> None:
        self.rows[record.part] = (replace(record, state="refused", reason=reason), None)

    async def of_alert(self, node_id: str, alert_id: str) -> list[AttachmentRecord]:
        return [r for r, _ in self.rows.values()]

    async def ciphertext(self, node_id: str, alert_id: str, part: str, sha256: str) -> bytes | None:
        found = self.rows.get(part)
        return None if found is None else found[1]

    async def forget_nominal(self, node_id: str, alert_id: str) -> int:
        gone = [p for p, (r, _) in self.rows.items() if r.nominal]
        for part in gone:
            del self.rows[part]
        self.forgotten.append(alert_id)
        return len(gone)


@dataclass
class Bucket:
    objects: dict[str, bytes]

    async def fetch(self, owner: str, sha256: str, size: int) -> Fetched:
        return Fetched(data=next(d for d in self.objects.values() if len(d) == size))


@dataclass
class Vault:
    """Seals by prefixing; ``ended`` says the alert's retention ended here."""

    ended: bool = False

    async def seal(self, alert_id: str, part: str, ciphertext: bytes) -> bytes | None:
        return None if self.ended else b"V" + ciphertext

    async def open(self, alert_id: str, part: str, stored: bytes) -> bytes | None:
        return None if self.ended else stored[1:]


@dataclass
class Row:
    node_id: str = TJ
    alert_id: str = ALERT


@dataclass(frozen=True)
class Sealed:
    raw: bytes
    files: dict[str, bytes]
    signer: SigningKey
    kem: KemPrivateKey

    def opened(self, raw: bytes | None = None) -> OpenedEnvelope:
        """``raw`` (this alert, or a form of it) verified and opened by TJ's agency."""
        verified = UnverifiedEnvelope.parse(raw or self.raw).verify(
            {self.signer.key_id: self.signer.verify_key()},
            subject_border_pair="KG-TJ",
            subject_kind="seizure",
            recipient_agency=AGENCY,
        )
        return verified.open(AGENCY, {self.kem.key_id: self.kem})


@pytest.fixture
def sealed() -> Sealed:
    kem, signer = KemPrivateKey.generate(HpkeSuite.X25519), SigningKey.generate()
    alert = seal_alert(
        HEADER,
        {"case": b"{}"},
        [RecipientKey(AGENCY, kem.public_key(), ("case", "file-1", "file-2"))],
        signer,
        files=[
            FilePart(card=canonical_json({"name": "photo.jpg"}), data=b"photo"),
            FilePart(card=CARD, data=b"scan", nominal=True),
        ],
    )
    return Sealed(alert.envelope, alert.files, signer, kem)


def node() -> Node:
    return World.demo().node(TJ)


async def fetched(sealed: Sealed, vault: Vault) -> tuple[AttachmentService, Store]:
    store = Store()
    service = AttachmentService(
        node=node(),
        store=store,  # type: ignore[arg-type]
        objects=Bucket(sealed.files),  # type: ignore[arg-type]
        vault=vault,
    )
    await service.expect(ALERT, "blo-karamyk-kg", sealed.opened())
    await service.fetch_pending()
    return service, store


async def test_a_nominal_file_is_stored_through_the_vault_and_served_back(
    sealed: Sealed,
) -> None:
    service, store = await fetched(sealed, Vault())
    assert store.rows["file-2"][1] == b"V" + sealed.files["file-2"]  # through the vault
    assert store.rows["file-1"][1] == sealed.files["file-1"]  # a case file as it came
    opened = sealed.opened()
    assert (await service.file(ALERT, opened, 2)).data == b"scan"
    assert service.thumbnail(opened, 2) == b"\xff\xd8\xff"
    # The listener deletes the nominal file's row only.
    await service.nominal_erased(Row())  # type: ignore[arg-type]
    assert set(store.rows) == {"file-1"}
    assert (await service.file(ALERT, opened, 1)).data == b"photo"


async def test_without_its_card_a_nominal_file_and_its_thumbnail_are_gone_not_a_case_file(
    sealed: Sealed,
) -> None:
    service, _ = await fetched(sealed, Vault())
    opened = sealed.opened(redact(redact(sealed.raw, "file-2"), "file-1"))
    with pytest.raises(AttachmentErased):
        await service.file(ALERT, opened, 2)
    with pytest.raises(AttachmentErased):
        service.thumbnail(opened, 2)
    assert (await service.file(ALERT, opened, 1)).data == b"photo"
    states = {a["index"]: a["state"] for a in await service.listing(ALERT, opened)}
    assert states == {1: "stored", 2: "erased"}


async def test_a_nominal_file_whose_retention_ended_is_neither_stored_nor_served(
    sealed: Sealed,
) -> None:
    vault = Vault(ended=True)
    service, store = await fetched(sealed, vault)
    record, data = store.rows["file-2"]
    assert (record.state, record.reason, data) == ("refused", "nominal_erased", None)
    # A copy stored before, read after the end: 410, not its bytes.
    vault.ended = False
    service, store = await fetched(sealed, vault)
    vault.ended = True
    with pytest.raises(AttachmentErased):
        await service.file(ALERT, sealed.opened(), 2)
