"""crypto.note signed notes, checked against golang.org/x/mod/sumdb/note's published vectors.

The PeterNeumann and EnochRoot keys, texts and signatures are verbatim from
golang.org/x/mod/sumdb/note (note_test.go TestSign/TestOpen/TestNewVerifier and
example_test.go ExampleSign_add_signatures; the same file is cmd/go/internal/note in the Go
tree). Ed25519 is deterministic, so signing with the published private key must reproduce the
published signature byte for byte.
"""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from blo_exchange.crypto.note import (
    MAX_SIGNATURES,
    NoteError,
    NoteSigner,
    NoteVerifier,
    key_id,
    open_note,
    parse_verifier_key,
    sign_note,
)

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_B64 = (
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM="
)
ENOCH_B64 = (
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ="
)
PETER_SIG = f"— PeterNeumann {PETER_B64}\n"
ENOCH_SIG = f"— EnochRoot {ENOCH_B64}\n"


def peter_signer() -> NoteSigner:
    # x/mod's private key format: PRIVATE+KEY+<name>+<hex id>+base64(0x01 || 32-byte seed).
    typed_seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert typed_seed[0] == 0x01
    return NoteSigner("PeterNeumann", Ed25519PrivateKey.from_private_bytes(typed_seed[1:]))


def enoch_signer() -> NoteSigner:
    # ExampleSign_add_signatures generates EnochRoot's key from a reader of zero bytes.
    return NoteSigner("EnochRoot", Ed25519PrivateKey.from_private_bytes(bytes(32)))


def fresh_signer(name: str) -> NoteSigner:
    return NoteSigner(name, Ed25519PrivateKey.generate())


# --- published vectors ---------------------------------------------------------------------------


def test_key_id_matches_the_published_verifier_key() -> None:
    verifier = parse_verifier_key(PETER_VKEY)
    assert verifier.name == "PeterNeumann"
    assert verifier.key_id == bytes.fromhex("c74f20a3")
    assert key_id("PeterNeumann", verifier.public_key_raw) == bytes.fromhex("c74f20a3")
    assert verifier.verifier_key_string() == PETER_VKEY
    assert peter_signer().key_id == verifier.key_id


def test_enoch_key_from_a_zero_seed_is_the_published_key() -> None:
    assert enoch_signer().verifier().verifier_key_string() == ENOCH_VKEY
    assert parse_verifier_key(ENOCH_VKEY).key_id == bytes.fromhex("af0cfe78")


def test_signing_reproduces_the_published_note() -> None:
    assert peter_signer().sign(TEXT) == TEXT + "\n" + PETER_SIG


def test_signing_with_two_keys_reproduces_the_published_note() -> None:
    assert sign_note(TEXT, [peter_signer(), enoch_signer()]) == TEXT + "\n" + PETER_SIG + ENOCH_SIG


def test_open_published_note() -> None:
    assert open_note(TEXT + "\n" + PETER_SIG, [parse_verifier_key(PETER_VKEY)]) == TEXT


# note_test.go TestOpen
def test_open_doubly_signed_note_with_either_or_both_keys() -> None:
    msg = TEXT + "\n" + PETER_SIG + ENOCH_SIG
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    assert open_note(msg, [peter]) == TEXT
    assert open_note(msg, [enoch]) == TEXT
    assert open_note(msg, [peter, enoch]) == TEXT
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(msg, [])


def test_unused_duplicate_verifier_is_fine() -> None:
    enoch = parse_verifier_key(ENOCH_VKEY)
    peter = parse_verifier_key(PETER_VKEY)
    assert open_note(TEXT + "\n" + PETER_SIG, [enoch, peter, enoch]) == TEXT


def test_too_many_signatures() -> None:
    peter = parse_verifier_key(PETER_VKEY)
    assert open_note(TEXT + "\n" + PETER_SIG * MAX_SIGNATURES, [peter]) == TEXT
    for verifiers in ([peter], []):
        with pytest.raises(NoteError, match="too many"):
            open_note(TEXT + "\n" + PETER_SIG * (MAX_SIGNATURES + 1), verifiers)


def _insert_abcd(sig: str) -> bytes:
    # Upstream slices the UTF-8 bytes (the em dash is three of them), so do the same.
    raw = sig.encode()
    return raw[:60] + b"ABCD" + raw[60:]


def test_invalid_signature_by_a_known_key() -> None:
    msg = (TEXT + "\n").encode() + _insert_abcd(PETER_SIG)
    with pytest.raises(NoteError, match="invalid signature by PeterNeumann"):
        open_note(msg, [parse_verifier_key(PETER_VKEY)])


def test_duplicated_and_unverifiable_unknown_signatures_are_ignored() -> None:
    msg = (TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG).encode() + _insert_abcd(
        ENOCH_SIG
    )
    assert open_note(msg, [parse_verifier_key(PETER_VKEY)]) == TEXT


@pytest.mark.parametrize(
    "msg",
    [
        TEXT.encode(),
        (TEXT + "\n").encode(),
        (TEXT + "\n" + PETER_SIG[:-1]).encode(),
        b"\x01" + (TEXT + "\n" + PETER_SIG).encode(),
        b"\xff" + (TEXT + "\n" + PETER_SIG).encode(),
        (TEXT + "\n" + f"— Bad Name {PETER_B64}").encode(),
        (TEXT + "\n" + PETER_SIG + "Unexpected line.\n").encode(),
    ],
)
def test_malformed_notes(msg: bytes) -> None:
    with pytest.raises(NoteError):
        open_note(msg, [parse_verifier_key(PETER_VKEY)])


# note_test.go TestNewVerifier: every proper substring and every one-byte increment is refused.
def test_mangled_verifier_keys_are_refused() -> None:
    b = PETER_VKEY.encode()
    mangled = [
        b[i:j] for i in range(len(b) + 1) for j in range(i + 1, len(b) + 1) if (i, j) != (0, len(b))
    ]
    mangled += [b[:i] + bytes([b[i] + 1]) + b[i + 1 :] for i in range(len(b))]
    mangled += [
        # wrong length key, with adjusted key hash
        b"PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
        b"PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # unknown algorithm
    ]
    accepted = []
    for key in mangled:
        try:
            parse_verifier_key(key.decode("utf-8", "surrogateescape"))
        except NoteError:
            continue
        accepted.append(key)
    assert accepted == []


# --- round trips and corruption ------------------------------------------------------------------


def test_round_trip_with_a_fresh_key() -> None:
    signer = fresh_signer("ledger.blo.example/node-a")
    note = signer.sign("hello\n\nworld\n")
    assert open_note(note, [signer.verifier()]) == "hello\n\nworld\n"
    assert open_note(note.encode(), [signer.verifier()]) == "hello\n\nworld\n"
    assert parse_verifier_key(signer.verifier().verifier_key_string()).public_key_raw == (
        signer.verifier().public_key_raw
    )


def test_every_flipped_bit_in_the_body_or_signature_fails() -> None:
    signer = fresh_signer("example.com/log")
    note = signer.sign("example.com/log\n3\nAAAA\n").encode()
    verifiers = [signer.verifier()]
    sig_line_start = note.rindex("— ".encode())
    sig_b64_start = note.rindex(b" ") + 1
    body_positions = range(sig_line_start - 1)  # not the separating blank line
    for pos in body_positions:
        for bit in range(8):
            bad = bytearray(note)
            bad[pos] ^= 1 << bit
            with pytest.raises(NoteError):
                open_note(bytes(bad), verifiers)
    blob = base64.b64decode(note[sig_b64_start:-1])
    for pos in range(len(blob)):
        for bit in range(8):
            bad_blob = bytearray(blob)
            bad_blob[pos] ^= 1 << bit
            bad = note[:sig_b64_start] + base64.b64encode(bytes(bad_blob)) + b"\n"
            with pytest.raises(NoteError):
                open_note(bad, verifiers)


def test_unknown_key_fails() -> None:
    note = fresh_signer("example.com/a").sign("text\n")
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(note, [fresh_signer("example.com/b").verifier()])


def test_same_name_other_key_is_unknown_not_invalid() -> None:
    note = fresh_signer("example.com/a").sign("text\n")
    impostor = fresh_signer("example.com/a").verifier()
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(note, [impostor])


def test_one_bad_signature_by_a_known_key_rejects_the_note() -> None:
    a, b = fresh_signer("example.com/a"), fresh_signer("example.com/b")
    good = a.signature_line("text\n")
    forged = b.signature_line("other\n")
    with pytest.raises(NoteError, match=r"invalid signature by example\.com/b"):
        open_note("text\n\n" + good + forged, [a.verifier(), b.verifier()])
    assert open_note("text\n\n" + good + forged, [a.verifier()]) == "text\n"


def test_text_is_separated_at_the_last_blank_line() -> None:
    signer = fresh_signer("example.com/a")
    note = signer.sign("a\n\n— example.com/a AAAA\n")
    assert open_note(note, [signer.verifier()]) == "a\n\n— example.com/a AAAA\n"


def test_conflicting_verifiers_are_refused() -> None:
    v = fresh_signer("example.com/a").verifier()
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    clash = NoteVerifier("example.com/a", other)
    clash.key_id = v.key_id  # simulate a key ID collision
    with pytest.raises(NoteError, match="share the name and key ID"):
        open_note(fresh_signer("example.com/a").sign("x\n"), [v, clash])


# --- refused inputs ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["", "has space", "a+b", "new\nline", "tab\tname", "nbsp\u00a0", "\x01"]
)
def test_invalid_key_names(name: str) -> None:
    key = Ed25519PrivateKey.generate()
    with pytest.raises(NoteError):
        NoteSigner(name, key)
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    with pytest.raises(NoteError):
        NoteVerifier(name, raw)


@pytest.mark.parametrize("text", ["", "no final newline", "a\x00b\n", "carriage\r\n", "\udcff\n"])
def test_invalid_texts_are_not_signed(text: str) -> None:
    with pytest.raises(NoteError):
        fresh_signer("example.com/a").sign(text)


def test_sign_note_needs_a_signer() -> None:
    with pytest.raises(NoteError):
        sign_note("text\n", [])


def test_public_key_must_be_32_bytes() -> None:
    with pytest.raises(NoteError):
        NoteVerifier("example.com/a", bytes(31))


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case key ID
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW\n",
        "PeterNeumann+c74f20a3",
        "",
    ],
)
def test_other_bad_verifier_keys(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier_key(vkey)


def test_non_utf8_and_surrogates_are_refused() -> None:
    signer = fresh_signer("example.com/a")
    note = signer.sign("caf\u00e9\n")
    assert open_note(note.encode(), [signer.verifier()]) == "caf\u00e9\n"
    with pytest.raises(NoteError):
        open_note(note.encode().replace("\u00e9".encode(), b"\xe9"), [signer.verifier()])
    with pytest.raises(NoteError):
        open_note(note.replace("\u00e9", "\udce9"), [signer.verifier()])
