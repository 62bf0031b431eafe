"""The package archive and manifest bytes (crypto.package): determinism, and what is refused
before any key is looked up."""

from __future__ import annotations

import io
import json
import tarfile

import pytest

from blo_exchange.crypto.canonical import b64u_encode, canonical_json, sha256_hex
from blo_exchange.crypto.envelope import SIGNATURE_CONTEXT
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey
from blo_exchange.crypto.package import (
    MANIFEST_MEMBER,
    PACKAGE_FORMAT,
    UnverifiedManifest,
    read_archive,
    sign_manifest,
    write_archive,
)
from blo_exchange.crypto.package_seal import open_package, seal_package
from blo_exchange.errors import InvalidPackage

MEMBERS = {"envelopes/a.json": b'{"a":1}', "statements/s.json": b'{"s":2}'}


def body(members: dict[str, bytes]) -> dict[str, object]:
    return {
        "format": PACKAGE_FORMAT,
        "package_id": "p",
        "exporter_node": "blo-karamyk-kg",
        "exporter_agency": "kg-border-service",
        "for_agency": "tj-drug-control-agency",
        "created_at": "2026-12-05T00:00:00.000Z",
        "members": [
            {"name": n, "sha256": sha256_hex(c), "size": len(c)} for n, c in sorted(members.items())
        ],
    }


def test_the_archive_is_deterministic_with_the_manifest_first() -> None:
    one = write_archive({**MEMBERS, MANIFEST_MEMBER: b"{}"})
    two = write_archive({MANIFEST_MEMBER: b"{}", **dict(reversed(MEMBERS.items()))})
    assert one == two
    assert list(read_archive(one)) == [MANIFEST_MEMBER, *sorted(MEMBERS)]


def tar_of(*infos: tuple[tarfile.TarInfo, bytes]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for info, content in infos:
            info.size = len(content)
            archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


def test_refused_a_symlink_member() -> None:
    link = tarfile.TarInfo("envelopes/a.json")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(InvalidPackage) as caught:
        read_archive(tar_of((link, b"")))
    assert (caught.value.member, caught.value.reason) == ("envelopes/a.json", "unexpected_member")


def test_refused_a_path_outside_the_package_names() -> None:
    with pytest.raises(InvalidPackage) as caught:
        read_archive(tar_of((tarfile.TarInfo("../envelopes/a.json"), b"x")))
    assert caught.value.reason == "unexpected_member"


def test_refused_a_member_twice() -> None:
    data = tar_of(
        (tarfile.TarInfo("envelopes/a.json"), b"1"), (tarfile.TarInfo("envelopes/a.json"), b"2")
    )
    with pytest.raises(InvalidPackage) as caught:
        read_archive(data)
    assert (caught.value.member, caught.value.reason) == ("envelopes/a.json", "duplicate_member")


def test_refused_what_is_not_a_tar_at_all() -> None:
    with pytest.raises(InvalidPackage) as caught:
        read_archive(b"PK\x03\x04 a zip, say")
    assert caught.value.member == "archive"


def test_the_manifest_verifies_and_checks_its_members() -> None:
    key = SigningKey.generate()
    raw = sign_manifest(body(MEMBERS), node="blo-karamyk-kg", signer=key)
    manifest = UnverifiedManifest.parse(raw).verify({key.key_id: key.verify_key()})
    manifest.check_members({MANIFEST_MEMBER: raw, **MEMBERS})


def test_refused_a_manifest_signature_made_for_another_domain() -> None:
    # The same key's signature over the same bytes under the envelope's context is not one.
    key = SigningKey.generate()
    doc = json.loads(sign_manifest(body(MEMBERS), node="blo-karamyk-kg", signer=key))
    doc["signature"]["sig"] = b64u_encode(
        key.sign(SIGNATURE_CONTEXT + canonical_json(doc["manifest"]))
    )
    with pytest.raises(InvalidPackage) as caught:
        UnverifiedManifest.parse(canonical_json(doc)).verify({key.key_id: key.verify_key()})
    assert (caught.value.member, caught.value.reason) == (MANIFEST_MEMBER, "bad_signature")


def test_refused_a_manifest_signed_by_a_node_other_than_its_exporter() -> None:
    key = SigningKey.generate()
    raw = sign_manifest(body(MEMBERS), node="blo-oybek-uz", signer=key)
    with pytest.raises(InvalidPackage) as caught:
        UnverifiedManifest.parse(raw)
    assert (caught.value.member, caught.value.reason) == (MANIFEST_MEMBER, "malformed")


def test_a_sealed_package_opens_only_for_its_agency_with_its_key() -> None:
    tj = KemPrivateKey.generate(HpkeSuite.X25519)
    other = KemPrivateKey.generate(HpkeSuite.X25519)
    sealed = seal_package(b"archive", for_agency="tj-drug-control-agency", key=tj.public_key())
    assert open_package(sealed, agency="tj-drug-control-agency", keys={tj.key_id: tj}) == b"archive"
    with pytest.raises(InvalidPackage) as caught:
        open_package(sealed, agency="tj-drug-control-agency", keys={other.key_id: other})
    assert (caught.value.member, caught.value.reason) == ("sealed", "no_private_key")


def test_refused_a_sealed_package_whose_clear_line_names_another_key() -> None:
    # The clear line is bound by HPKE's info: pointing it at another key the importer holds
    # (to make it try that one) makes the file unopenable, not readable.
    tj, second = (KemPrivateKey.generate(HpkeSuite.X25519) for _ in range(2))
    sealed = seal_package(b"archive", for_agency="tj-drug-control-agency", key=tj.public_key())
    moved = sealed.replace(tj.key_id.encode(), second.key_id.encode(), 1)
    keys = {tj.key_id: tj, second.key_id: second}
    with pytest.raises(InvalidPackage) as caught:
        open_package(moved, agency="tj-drug-control-agency", keys=keys)
    assert (caught.value.member, caught.value.reason) == ("sealed", "cannot_open")
