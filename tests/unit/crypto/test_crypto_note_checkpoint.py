"""crypto.note checkpoints (c2sp.org/tlog-checkpoint), and a ledger tree signed end to end."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blo_exchange.crypto.note import (
    Checkpoint,
    NoteError,
    NoteSigner,
    format_checkpoint,
    open_checkpoint,
    open_note,
    parse_checkpoint,
)
from blo_exchange.ledger import merkle
from blo_exchange.ledger.merkle import MemoryTree

ROOT = bytes(range(32))
ROOT_B64 = base64.b64encode(ROOT).decode()
URLSAFE_ROOT_B64 = base64.urlsafe_b64encode(bytes([0xFF]) * 32).decode()

# The example of c2sp.org/tlog-checkpoint (its signature is by a key the spec does not publish).
SPEC_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def test_format() -> None:
    assert format_checkpoint("example.com/log", 5, ROOT) == f"example.com/log\n5\n{ROOT_B64}\n"
    assert (
        format_checkpoint("o", 0, ROOT, ["ext a", "ext b"]) == f"o\n0\n{ROOT_B64}\next a\next b\n"
    )


def test_parse_the_spec_example_body() -> None:
    body = SPEC_EXAMPLE.split("\n\n")[0] + "\n"
    cp = parse_checkpoint(body)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.text() == body


def test_spec_example_note_is_rejected_without_its_key() -> None:
    # The signature parses but is by an unknown key, and unknown keys never suffice.
    other = NoteSigner("example.com/behind-the-sofa", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError, match="no signature by a known key"):
        open_note(SPEC_EXAMPLE, [other.verifier()])


@pytest.mark.parametrize(
    ("size", "extensions"), [(0, ()), (1, ()), (2**64 - 1, ()), (7, ("a", "b c"))]
)
def test_round_trip(size: int, extensions: tuple[str, ...]) -> None:
    text = format_checkpoint("example.com/log", size, ROOT, extensions)
    assert parse_checkpoint(text) == Checkpoint("example.com/log", size, ROOT, extensions)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        f"o\n5\n{ROOT_B64}",  # no final newline
        "o\n5\n",  # fewer than three lines
        f"\n5\n{ROOT_B64}\n",  # empty origin
        f"o\n05\n{ROOT_B64}\n",  # leading zero
        f"o\n+5\n{ROOT_B64}\n",
        f"o\n 5\n{ROOT_B64}\n",
        f"o\n5 \n{ROOT_B64}\n",
        f"o\n-1\n{ROOT_B64}\n",
        f"o\n5_0\n{ROOT_B64}\n",
        f"o\n\uff15\n{ROOT_B64}\n",  # a fullwidth digit, which int() would accept
        f"o\n{2**64}\n{ROOT_B64}\n",
        f"o\n\n{ROOT_B64}\n",
        "o\n5\n\n",
        f"o\n5\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte root
        f"o\n5\n{ROOT_B64[:-1]}\n",
        f"o\n5\n{ROOT_B64[:-2]}B=\n",  # non-canonical trailing bits
        f"o\n5\n{URLSAFE_ROOT_B64}\n",  # URL-safe alphabet
        f"o\n5\n{ROOT_B64}\n\n",  # empty extension line
        f"o\n5\n{ROOT_B64}\next\n\n",
        f"o\r\n5\n{ROOT_B64}\n",
        f"o\n5\r\n{ROOT_B64}\n",
    ],
)
def test_parse_is_strict(text: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(text)


@pytest.mark.parametrize(
    ("origin", "size", "root", "extensions"),
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("o", -1, ROOT, ()),
        ("o", 2**64, ROOT, ()),
        ("o", 1, ROOT[:31], ()),
        ("o", 1, ROOT, ("",)),
        ("o", 1, ROOT, ("a\nb",)),
    ],
)
def test_format_refuses_what_parse_would(
    origin: str, size: int, root: bytes, extensions: tuple[str, ...]
) -> None:
    with pytest.raises(NoteError):
        format_checkpoint(origin, size, root, extensions)


def test_signed_ledger_checkpoint_end_to_end() -> None:
    origin = "ledger.blo.example/node-a"
    signer = NoteSigner(origin, Ed25519PrivateKey.generate())
    tree = MemoryTree()
    tree.extend([f"entry {i}".encode() for i in range(11)])
    old = signer.sign(format_checkpoint(origin, 6, tree.root_at(6)))
    new = signer.sign(format_checkpoint(origin, tree.size, tree.root()))

    first = open_checkpoint(old, [signer.verifier()], origin)
    second = open_checkpoint(new, [signer.verifier()], origin)
    proof = tree.consistency_proof(first.size, second.size)
    merkle.verify_consistency(first.size, second.size, first.root_hash, second.root_hash, proof)
    leaf = merkle.leaf_hash(b"entry 3")
    merkle.verify_inclusion(leaf, 3, second.size, tree.inclusion_proof(3), second.root_hash)


def test_open_checkpoint_checks_the_origin() -> None:
    signer = NoteSigner("ledger.blo.example/node-a", Ed25519PrivateKey.generate())
    note = signer.sign(format_checkpoint("ledger.blo.example/node-b", 1, ROOT))
    with pytest.raises(NoteError, match="another log"):
        open_checkpoint(note, [signer.verifier()], "ledger.blo.example/node-a")


def test_open_checkpoint_needs_a_checkpoint_body() -> None:
    signer = NoteSigner("example.com/log", Ed25519PrivateKey.generate())
    with pytest.raises(NoteError):
        open_checkpoint(signer.sign("just text\n"), [signer.verifier()], "example.com/log")
