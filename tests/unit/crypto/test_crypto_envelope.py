"""The envelope end to end: seal, parse, verify, open, redact, for both suites."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from blo_exchange.crypto.canonical import b64u_decode, canonical_json, sha256_hex
from blo_exchange.crypto.envelope import (
    PART_NAMES,
    SIGNATURE_CONTEXT,
    RecipientKey,
    UnverifiedEnvelope,
    VerifiedEnvelope,
    envelope_sha256,
    redact,
    redact_all,
    rejection_reason,
    seal,
)
from blo_exchange.crypto.keys import HpkeSuite, KemPrivateKey, SigningKey, VerifyKey, hpke_suite
from blo_exchange.errors import InvalidEnvelope

ALERT_ID = "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"
FULL = "tj-drug-control-agency"  # may read case and nominal
CASE_ONLY = "tj-customs-service"  # may read case only
OUTSIDER = "uz-border-troops"  # not a recipient
CASE = b'{"summary":"4.2 kg heroin in a spare tyre"}'
NOMINAL = b'{"name":"A. Person","passport":"X1234567"}'


def make_header(suite: HpkeSuite) -> dict[str, Any]:
    return {
        "alert_id": ALERT_ID,
        "kind": "seizure",
        "border_pair": "KG-TJ",
        "crossing_point": "KG-KARAMYK",
        "origin_node": "blo-karamyk-kg",
        "origin_agency": "kg-border-service",
        "created_at": "2026-11-28T06:40:00Z",
        "tlp": "AMBER",
        "handling": {"pap": "GREEN", "retention_days": 365},
        "grading": {"source": "B", "information": 2},
        "agreement_ids": ["agr-kg-tj-1", "agr-kg-tj-2"],
        "supersedes": None,
        "suite": suite.value,
    }


@dataclass(frozen=True)
class World:
    suite: HpkeSuite
    signer: SigningKey
    kem: dict[str, KemPrivateKey]  # agency -> its private key

    def recipients(self) -> list[RecipientKey]:
        return [
            RecipientKey(FULL, self.kem[FULL].public_key(), ("case", "nominal")),
            RecipientKey(CASE_ONLY, self.kem[CASE_ONLY].public_key(), ("case",)),
        ]

    def seal(self, **overrides: Any) -> bytes:
        arguments: dict[str, Any] = {
            "header": make_header(self.suite),
            "parts": {"case": CASE, "nominal": NOMINAL},
            "recipients": self.recipients(),
            "signer": self.signer,
        }
        arguments.update(overrides)
        return seal(**arguments)

    def verify_keys(self) -> dict[str, VerifyKey]:
        return {self.signer.key_id: self.signer.verify_key()}

    def private_keys(self, agency: str) -> dict[str, KemPrivateKey]:
        return {self.kem[agency].key_id: self.kem[agency]}

    def verify(self, raw: bytes, agency: str = FULL, **subject: str) -> VerifiedEnvelope:
        return UnverifiedEnvelope.parse(raw).verify(
            self.verify_keys(),
            subject_border_pair=subject.get("pair", "KG-TJ"),
            subject_kind=subject.get("kind", "seizure"),
            recipient_agency=agency,
        )


@pytest.fixture(scope="module", params=list(HpkeSuite), ids=lambda suite: suite.name)
def world(request: pytest.FixtureRequest) -> World:
    suite: HpkeSuite = request.param
    agencies = (FULL, CASE_ONLY, OUTSIDER)
    return World(
        suite=suite,
        signer=SigningKey.generate(),
        kem={agency: KemPrivateKey.generate(suite) for agency in agencies},
    )


@pytest.fixture(scope="module")
def sealed(world: World) -> bytes:
    return world.seal()


def _reason(action: Callable[[], object]) -> str:
    with pytest.raises(InvalidEnvelope) as caught:
        action()
    assert str(caught.value) == "invalid envelope"  # opaque: says nothing about which check
    return rejection_reason(caught.value)


def test_round_trip_each_recipient_opens_what_it_may(world: World, sealed: bytes) -> None:
    full = world.verify(sealed, FULL).open(FULL, world.private_keys(FULL))
    assert full.parts == {"case": CASE, "nominal": NOMINAL}
    assert full.header == make_header(world.suite)

    case_only = world.verify(sealed, CASE_ONLY).open(CASE_ONLY, world.private_keys(CASE_ONLY))
    assert case_only.parts == {"case": CASE}


def test_envelope_shape_matches_design(world: World, sealed: bytes) -> None:
    document = json.loads(sealed)
    assert sealed == canonical_json(document)
    assert set(document) == {"v", "header", "recipients", "parts", "signature"}
    assert document["v"] == 1
    assert [entry["agency"] for entry in document["recipients"]] == [FULL, CASE_ONLY]
    assert document["recipients"][1]["parts"] == ["case"]
    assert document["recipients"][0]["key_id"] == world.kem[FULL].key_id
    for record in document["parts"].values():
        assert record["sha256"] == sha256_hex(b64u_decode(record["ciphertext"]))
        assert len(b64u_decode(record["nonce"])) == 12
    assert document["signature"]["alg"] == "Ed25519"
    assert document["signature"]["key_id"] == world.signer.key_id


def test_signature_is_over_context_and_hash_reduced_envelope(world: World, sealed: bytes) -> None:
    document = json.loads(sealed)
    signature = document.pop("signature")
    document["parts"] = {name: {"sha256": r["sha256"]} for name, r in document["parts"].items()}
    world.signer.verify_key().verify(
        b64u_decode(signature["sig"]), SIGNATURE_CONTEXT + canonical_json(document)
    )


def test_unverified_accessors(world: World, sealed: bytes) -> None:
    envelope = UnverifiedEnvelope.parse(sealed)
    assert envelope.alert_id == ALERT_ID
    assert envelope.origin_node == "blo-karamyk-kg"
    assert envelope.origin_agency == "kg-border-service"
    assert envelope.border_pair == "KG-TJ"
    assert envelope.kind == "seizure"
    assert envelope.suite is world.suite
    assert envelope.signature_key_id == world.signer.key_id
    assert envelope.recipient_agencies == (FULL, CASE_ONLY)
    header = envelope.header
    header["kind"] = "changed"
    assert envelope.kind == "seizure"  # a copy


def test_verified_accessors(world: World, sealed: bytes) -> None:
    verified = world.verify(sealed)
    assert verified.raw == sealed
    assert verified.alert_id == ALERT_ID
    assert verified.recipients == [FULL, CASE_ONLY]
    assert verified.recipient_parts(FULL) == ("case", "nominal")
    assert verified.recipient_parts(CASE_ONLY) == ("case",)
    assert verified.redacted_parts == ()
    assert verified.signature_key_id == world.signer.key_id
    assert envelope_sha256(sealed) == sha256_hex(sealed)


def test_seal_uses_rng_for_part_keys_and_nonces(world: World) -> None:
    def counter_rng() -> Callable[[int], bytes]:
        counter = itertools.count(1)
        return lambda size: bytes([next(counter)]) * size

    first = json.loads(world.seal(rng=counter_rng()))
    second = json.loads(world.seal(rng=counter_rng()))
    assert first["parts"] == second["parts"]
    # HPKE's ephemeral key is OpenSSL's, so the recipients' enc still differ.
    assert first["recipients"][0]["enc"] != second["recipients"][0]["enc"]


def test_outsider_cannot_verify_as_recipient(world: World, sealed: bytes) -> None:
    assert _reason(lambda: world.verify(sealed, OUTSIDER)) == "not_a_recipient"


def test_outsider_cannot_open_even_past_the_list_check(world: World, sealed: bytes) -> None:
    verified = UnverifiedEnvelope.parse(sealed).verify_signature_only(
        world.verify_keys(), subject_border_pair="KG-TJ", subject_kind="seizure"
    )
    outsider_keys = world.private_keys(OUTSIDER)
    assert _reason(lambda: verified.open(OUTSIDER, outsider_keys)) == "not_a_recipient"

    # Its key, presented under the listed agency's key id, does not decrypt that agency's enc.
    impostor = KemPrivateKey(
        key_id=world.kem[FULL].key_id, suite=world.suite, private=world.kem[OUTSIDER].private
    )
    assert _reason(lambda: verified.open(FULL, {impostor.key_id: impostor})) == "hpke"

    # Nor does it at the HPKE level, with either agency's info string.
    enc = b64u_decode(json.loads(sealed)["recipients"][0]["enc"])
    for agency in (FULL, OUTSIDER):
        with pytest.raises(Exception):  # noqa: B017, PT011 - pyca's own error type
            hpke_suite(world.suite).decrypt(
                enc,
                world.kem[OUTSIDER]._hpke_key(),
                info=f"blo-exchange/v1|{ALERT_ID}|{agency}".encode(),
            )


def test_recipient_cannot_open_with_another_recipients_entry(world: World, sealed: bytes) -> None:
    verified = world.verify(sealed, CASE_ONLY)
    # CASE_ONLY's key cannot open FULL's entry (to read the nominal part).
    assert _reason(lambda: verified.open(FULL, world.private_keys(CASE_ONLY))) == "no_private_key"


def test_open_without_the_private_key(world: World, sealed: bytes) -> None:
    verified = world.verify(sealed)
    assert _reason(lambda: verified.open(FULL, {})) == "no_private_key"


def test_wrong_signing_key_under_the_same_key_id(world: World, sealed: bytes) -> None:
    other = SigningKey.generate()
    keys = {world.signer.key_id: VerifyKey(world.signer.key_id, other.public_bytes())}
    envelope = UnverifiedEnvelope.parse(sealed)
    assert (
        _reason(
            lambda: envelope.verify(
                keys, subject_border_pair="KG-TJ", subject_kind="seizure", recipient_agency=FULL
            )
        )
        == "bad_signature"
    )


def test_signed_by_an_untrusted_key(world: World) -> None:
    raw = world.seal(signer=SigningKey.generate())
    assert _reason(lambda: world.verify(raw)) == "unknown_key"


@pytest.mark.parametrize("trusted", ["none", "another"])
def test_unknown_key_id(world: World, sealed: bytes, trusted: str) -> None:
    other = SigningKey.generate().verify_key()
    keys = {} if trusted == "none" else {other.key_id: other}
    envelope = UnverifiedEnvelope.parse(sealed)
    assert (
        _reason(
            lambda: envelope.verify(
                keys, subject_border_pair="KG-TJ", subject_kind="seizure", recipient_agency=FULL
            )
        )
        == "unknown_key"
    )


@pytest.mark.parametrize(("pair", "kind"), [("KG-UZ", "seizure"), ("KG-TJ", "wanted_person")])
def test_subject_mismatch(world: World, sealed: bytes, pair: str, kind: str) -> None:
    assert _reason(lambda: world.verify(sealed, pair=pair, kind=kind)) == "subject_mismatch"


def test_check_order_key_before_subject(world: World) -> None:
    raw = world.seal(signer=SigningKey.generate())
    assert _reason(lambda: world.verify(raw, OUTSIDER, pair="X-Y")) == "unknown_key"


def test_redacted_nominal_still_verifies_and_opens_case(world: World, sealed: bytes) -> None:
    redacted = redact(sealed, "nominal")
    original = json.loads(sealed)["parts"]
    assert json.loads(redacted)["parts"] == {
        "case": original["case"],
        "nominal": {"sha256": original["nominal"]["sha256"]},
    }
    verified = world.verify(redacted)
    assert verified.redacted_parts == ("nominal",)
    opened = verified.open(FULL, world.private_keys(FULL))
    assert opened.parts == {"case": CASE}
    assert "nominal" not in opened.parts
    assert redact(redacted, "nominal") == redacted  # idempotent


def test_redact_all_keeps_what_the_ledger_needs_and_nothing_that_opens(
    world: World, sealed: bytes
) -> None:
    """What the ledger keeps of an envelope: every part's hash, no nonce and no ciphertext; its
    signature still verifies and nothing opens. A verified envelope gives the same bytes
    without parsing them again (the ledger writer's path)."""
    kept = redact_all(sealed)
    original = json.loads(sealed)["parts"]
    assert json.loads(kept)["parts"] == {
        name: {"sha256": record["sha256"]} for name, record in original.items()
    }
    verified = world.verify(kept)
    assert set(verified.redacted_parts) == set(original)
    assert verified.open(FULL, world.private_keys(FULL)).parts == {}
    assert world.verify(sealed).redacted_all() == kept
    assert redact_all(kept) == kept  # idempotent


def test_redacted_hash_is_still_signed(world: World, sealed: bytes) -> None:
    document = json.loads(redact(sealed, "nominal"))
    document["parts"]["nominal"]["sha256"] = "0" * 64
    assert _reason(lambda: world.verify(canonical_json(document))) == "bad_signature"


def test_redact_rejects_unknown_or_absent_part(world: World) -> None:
    with pytest.raises(ValueError, match="unknown part"):
        redact(world.seal(), "photo")
    case_only = world.seal(
        parts={"case": CASE},
        recipients=[RecipientKey(FULL, world.kem[FULL].public_key(), ("case",))],
    )
    with pytest.raises(ValueError, match="no 'nominal' part"):
        redact(case_only, "nominal")
    with pytest.raises(InvalidEnvelope):
        redact(b"{}", "nominal")


def test_verify_signature_only_skips_just_the_recipient_check(world: World, sealed: bytes) -> None:
    envelope = UnverifiedEnvelope.parse(sealed)
    verified = envelope.verify_signature_only(
        world.verify_keys(), subject_border_pair="KG-TJ", subject_kind="seizure"
    )
    assert verified.recipients == [FULL, CASE_ONLY]
    assert (
        _reason(
            lambda: envelope.verify_signature_only(
                world.verify_keys(), subject_border_pair="KG-TJ", subject_kind="other"
            )
        )
        == "subject_mismatch"
    )


# --- structural rejections (parse) ---------------------------------------------------------


def _mutated(sealed: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    document = copy.deepcopy(json.loads(sealed))
    change(document)
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


STRUCTURAL: dict[str, Callable[[dict[str, Any]], object]] = {
    "v=2": lambda d: d.update(v=2),
    "v=true": lambda d: d.update(v=True),
    "v='1'": lambda d: d.update(v="1"),
    "missing signature": lambda d: d.pop("signature"),
    "extra top-level": lambda d: d.update(extra=1),
    "header not object": lambda d: d.update(header=[]),
    "header alert_id int": lambda d: d["header"].update(alert_id=7),
    "header missing kind": lambda d: d["header"].pop("kind"),
    "header empty origin_node": lambda d: d["header"].update(origin_node=""),
    "header unknown suite": lambda d: d["header"].update(suite="RSA/OAEP"),
    "alert_id with pipe": lambda d: d["header"].update(alert_id="a|b"),
    "recipients empty": lambda d: d.update(recipients=[]),
    "recipients not list": lambda d: d.update(recipients={}),
    "recipient extra field": lambda d: d["recipients"][0].update(extra="x"),
    "recipient missing enc": lambda d: d["recipients"][0].pop("enc"),
    "recipient parts not list": lambda d: d["recipients"][0].update(parts="case"),
    "recipient unknown part": lambda d: d["recipients"][0].update(parts=["photo"]),
    "recipient duplicate part": lambda d: d["recipients"][0].update(parts=["case", "case"]),
    "recipient enc padded": lambda d: d["recipients"][0].update(
        enc=d["recipients"][0]["enc"] + "="
    ),
    "recipient enc empty": lambda d: d["recipients"][0].update(enc=""),
    "duplicate recipient": lambda d: d["recipients"].append(d["recipients"][0]),
    "parts empty": lambda d: d.update(parts={}),
    "unknown part name": lambda d: d["parts"].update(photo=d["parts"]["case"]),
    "part missing nonce": lambda d: d["parts"]["case"].pop("nonce"),
    "part nonce 11 bytes": lambda d: d["parts"]["case"].update(nonce="AAAAAAAAAAAAAAA"),
    "part nonce bad b64": lambda d: d["parts"]["case"].update(nonce="AAAAAAAAAAAAAAA+"),
    "part ciphertext too short": lambda d: d["parts"]["case"].update(ciphertext="AAAA"),
    "part sha256 upper": lambda d: d["parts"]["case"].update(
        sha256=d["parts"]["case"]["sha256"].upper()
    ),
    "part sha256 short": lambda d: d["parts"]["case"].update(sha256="ab"),
    "signature alg": lambda d: d["signature"].update(alg="Ed448"),
    "signature sig short": lambda d: d["signature"].update(sig="AAAA"),
    "signature key_id int": lambda d: d["signature"].update(key_id=5),
    "float in header": lambda d: d["header"].update(score=0.5),
}


@pytest.mark.parametrize("change", STRUCTURAL.values(), ids=STRUCTURAL.keys())
def test_parse_rejects_malformed(sealed: bytes, change: Callable[[dict[str, Any]], object]) -> None:
    raw = _mutated(sealed, change)
    assert _reason(lambda: UnverifiedEnvelope.parse(raw)) == "malformed"


@pytest.mark.parametrize(
    "raw",
    [b"\xff\xfe", b"[]", b'"envelope"', b"1", b"null", b"", b"{}"],
    ids=["non-utf8", "array", "string", "number", "null", "empty", "empty-object"],
)
def test_parse_rejects_non_envelopes(raw: bytes) -> None:
    assert _reason(lambda: UnverifiedEnvelope.parse(raw)) == "malformed"


def test_parse_rejects_duplicate_keys(sealed: bytes) -> None:
    raw = sealed[:-1] + b',"v":1}'
    assert _reason(lambda: UnverifiedEnvelope.parse(raw)) == "malformed"


def test_parse_rejects_non_canonical_encoding(sealed: bytes) -> None:
    pretty = json.dumps(json.loads(sealed), indent=1).encode()
    assert _reason(lambda: UnverifiedEnvelope.parse(pretty)) == "malformed"


# --- seal refuses caller mistakes -----------------------------------------------------------


def test_seal_refuses_suite_mismatch(world: World) -> None:
    other_suite = next(suite for suite in HpkeSuite if suite is not world.suite)
    with pytest.raises(ValueError, match="another suite"):
        world.seal(header=make_header(other_suite))


def test_seal_refuses_unknown_part(world: World) -> None:
    with pytest.raises(ValueError, match="subset"):
        world.seal(parts={"case": CASE, "photo": b"x"})


def test_seal_refuses_recipient_part_not_given(world: World) -> None:
    with pytest.raises(ValueError, match="parts must be distinct and given"):
        world.seal(parts={"case": CASE})


def test_seal_refuses_float_in_header(world: World) -> None:
    with pytest.raises(ValueError, match="float"):
        world.seal(header=make_header(world.suite) | {"confidence": 0.9})


@pytest.mark.parametrize("field", ["alert_id", "kind", "border_pair", "origin_node", "suite"])
def test_seal_refuses_header_without_required_field(world: World, field: str) -> None:
    header = make_header(world.suite)
    del header[field]
    with pytest.raises(ValueError):  # noqa: PT011 - which ValueError does not matter
        world.seal(header=header)


def test_seal_refuses_short_rng(world: World) -> None:
    with pytest.raises(ValueError, match="rng"):
        world.seal(rng=lambda size: bytes(size - 1))


def test_part_names() -> None:
    assert PART_NAMES == ("case", "nominal")
