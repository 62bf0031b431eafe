"""The offline verifier on bundles built in memory: intact, altered, truncated, forked, re-keyed."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from blo_exchange.crypto.canonical import b64u_encode
from blo_exchange.crypto.keys import SigningKey
from blo_exchange.crypto.note import Cosigner, NoteSigner, format_checkpoint
from blo_exchange.crypto.receipt import sign_receipt
from blo_exchange.domain.ids import parse_time
from blo_exchange.ledger.entries import (
    build_entry,
    columns_digest,
    indexed_columns,
    parse_leaf_input,
)
from blo_exchange.ledger.merkle import MemoryTree, leaf_hash
from blo_exchange.ledger.records import receipt_fields
from blo_exchange.ledger.verify import (
    TrustedCheckpoint,
    TrustStore,
    VerifyReport,
    build_bundle,
    verify_bundle,
)

ORIGIN = "test.example/ledger"
SIGNER = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(range(32))))
OTHER = NoteSigner(ORIGIN, Ed25519PrivateKey.from_private_bytes(bytes(32)))


def leaves(n: int, tag: str = "") -> list[bytes]:
    return [f'{{"i":{i}{tag}}}'.encode() for i in range(n)]


def checkpoint(tree: MemoryTree, size: int, signer: NoteSigner = SIGNER) -> dict[str, Any]:
    root = tree.root_at(size)
    note = signer.sign(format_checkpoint(ORIGIN, size, root))
    return {"tree_size": size, "root_hash": root.hex(), "note": note}


def bundle(
    inputs: list[bytes], sizes: tuple[int, ...] = (), signer: NoteSigner = SIGNER
) -> dict[str, Any]:
    tree = MemoryTree()
    tree.extend(inputs)
    return build_bundle(
        origin=ORIGIN,
        ledger_public_key=signer.verifier().verifier_key_string(),
        checkpoint=checkpoint(tree, len(inputs), signer),
        checkpoints=[checkpoint(tree, s, signer) for s in (*sizes, len(inputs))],
        leaves=[(i, x, leaf_hash(x)) for i, x in enumerate(inputs)],
    )


def trusted(b: dict[str, Any]) -> TrustStore:
    c = b["checkpoint"]
    return TrustStore(
        origin=ORIGIN,
        ledger_public_key=b["ledger_public_key"],
        checkpoints=[TrustedCheckpoint(c["tree_size"], bytes.fromhex(c["root_hash"]), c["note"])],
    )


def verify(b: dict[str, Any], **kwargs: Any) -> VerifyReport:
    return verify_bundle(b, tree=MemoryTree(), **kwargs)


def test_an_intact_bundle_verifies() -> None:
    report = verify(bundle(leaves(13), sizes=(4, 8)))
    assert report.ok, report.failures
    assert report.tree_size == 13
    assert report.accepted is not None
    assert report.summary().startswith("OK: 13 entries")


def test_a_grown_log_is_consistent_with_what_was_trusted() -> None:
    trust = trusted(bundle(leaves(5)))
    assert verify(bundle(leaves(11)), trust=trust).ok


def test_an_altered_leaf_input_is_named_by_index() -> None:
    b = bundle(leaves(9), sizes=(3, 6))
    b["entries"][4]["leaf_input"] = b64u_encode(b'{"i":4,"x":1}')
    report = verify(b)
    assert not report.ok
    assert report.altered_indexes == [4]
    assert "entry 4 was altered" in report.summary()


def test_an_entry_altered_with_its_hash_is_bounded_by_the_signed_history() -> None:
    b = bundle(leaves(9), sizes=(3, 6))
    forged = b'{"i":4,"x":1}'
    b["entries"][4] |= {"leaf_input": b64u_encode(forged), "leaf_hash": leaf_hash(forged).hex()}
    report = verify(b)
    assert not report.ok
    assert report.altered_indexes == []
    assert any("[3, 6)" in f for f in report.failures), report.failures


def test_missing_entries_fail() -> None:
    b = bundle(leaves(6))
    del b["entries"][2]
    report = verify(b)
    assert not report.ok
    assert any("entry 2 is missing" in f for f in report.failures)


def test_truncation_below_a_trusted_checkpoint_is_reported() -> None:
    trust = trusted(bundle(leaves(10)))
    report = verify(bundle(leaves(7)), trust=trust)
    assert not report.ok
    assert "log truncated from 10 to 7" in report.summary()


def test_a_fork_is_reported() -> None:
    trust = trusted(bundle(leaves(5)))
    same_size = verify(bundle(leaves(5, tag=',"f":1')), trust=trust)
    assert any("fork" in f for f in same_size.failures), same_size.failures
    longer = verify(bundle(leaves(8, tag=',"f":1')), trust=trust)
    assert any("fork" in f for f in longer.failures), longer.failures


def test_the_pinned_key_wins_over_the_bundles() -> None:
    trust = trusted(bundle(leaves(3)))
    rekeyed = bundle(leaves(5), signer=OTHER)
    report = verify(rekeyed, trust=trust)
    assert not report.ok
    assert any("signature does not verify" in f for f in report.failures)
    given = verify(rekeyed, key=SIGNER.verifier().verifier_key_string())
    assert not given.ok


def test_a_changed_signed_root_fails() -> None:
    b = bundle(leaves(4))
    tampered = copy.deepcopy(b)
    tampered["checkpoint"]["root_hash"] = "00" * 32
    report = verify(tampered)
    assert not report.ok
    assert any("its note says otherwise" in f for f in report.failures)


# --- signed records, columns, witnesses (issue 12) -----------------------------------------------

KG_NODE = "blo-karamyk-kg"


def _record_entries() -> tuple[list[bytes], dict[str, Any], SigningKey]:
    node_key = SigningKey.generate()
    body = {
        "receipt_id": "r-1",
        "type": "alert_delivered",
        "node": KG_NODE,
        "agency": "kg-border-service",
        "alert_id": "019ac9a1-5b00-7c3e-8a4f-2d1e0b9c7a61",
        "border_pair": "KG-TJ",
        "occurred_at": "2026-11-28T06:41:00.000Z",
    }
    good = sign_receipt(body, node_key)
    entries = [
        build_entry(event_id="a", record=good, **receipt_fields(body, border_pair="KG-TJ")),
        build_entry(
            event_id="b",
            record=sign_receipt(body, SigningKey.generate()),
            **receipt_fields(body, border_pair="KG-TJ"),
        ),
        build_entry(
            event_id="c",
            record=good,
            **receipt_fields(body, border_pair="KG-TJ") | {"alert_id": "another"},
        ),
    ]
    directory = {
        KG_NODE: {
            "agency": "kg-border-service",
            "keys": [{"key_id": node_key.key_id, "public": b64u_encode(node_key.public_bytes())}],
        }
    }
    return [e.leaf_input for e in entries], directory, node_key


def test_each_entry_s_signed_record_is_checked_and_a_bad_one_is_named() -> None:
    inputs, directory, _ = _record_entries()
    report = verify(bundle(inputs), directory=directory)
    assert not report.ok
    assert report.failures == [
        "entry 1: its signed record does not verify (unknown_key)",
        "entry 2: its field(s) alert_id differ from its signed record",
    ]
    assert verify(bundle(inputs[:1]), directory=directory).ok
    # Without the node's key in the directory, nothing it signed verifies.
    assert not verify(bundle(inputs[:1]), directory={}).ok
    # A record-less v1 entry is accepted only before the first entry with a record.
    legacy = b'{"type":"feedback","v":1}'
    assert verify(bundle([legacy, inputs[0]]), directory=directory).ok
    late = verify(bundle([inputs[0], legacy]), directory=directory)
    assert late.failures == ["entry 1: a version 1 entry after entries with signed records"]


def test_an_indexed_column_that_disagrees_with_leaf_input_is_named() -> None:
    inputs, directory, _ = _record_entries()
    b = bundle(inputs[:1])
    columns = indexed_columns(parse_leaf_input(inputs[0]))
    b["entries"][0]["columns"] = columns | {"actor_agency": "uz-customs-committee"}
    report = verify(b, directory=directory)
    assert report.failures == [
        "entry 0: its database column(s) actor_agency disagree with its leaf_input"
    ]
    b["entries"][0]["columns"] = columns
    assert verify(b, directory=directory).ok


def test_the_column_digest_a_node_audits_with_changes_with_every_column() -> None:
    """What a node keeps of each verified row's columns (8 bytes) and re-digests from the
    stored row on every answer: the leaf's time string and the stored ``datetime`` agree, the
    recipients' order does not matter, and any changed value (a millisecond, a recipient, an
    agency) changes it."""
    inputs, _, _ = _record_entries()
    columns = indexed_columns(parse_leaf_input(inputs[0]))
    digest = columns_digest(columns)
    stored = columns | {"occurred_at": parse_time(columns["occurred_at"])}  # as the row holds it
    assert columns_digest(stored) == digest
    reordered = columns | {"recipients": list(reversed(columns["recipients"]))}
    assert columns_digest(reordered) == digest
    later = stored["occurred_at"] + timedelta(milliseconds=1)
    for changed in (
        {"occurred_at": later},
        {"recipients": [*columns["recipients"], "uz-customs-committee"]},
        {"actor_agency": "uz-customs-committee"},
        {"alert_id": None},
    ):
        assert columns_digest(columns | changed) != digest, changed


def test_witnesses_required_are_counted_on_the_checkpoint() -> None:
    b = bundle(leaves(3))
    witness = Cosigner.from_signing_key("w.example/witness", SigningKey.generate())
    text = b["checkpoint"]["note"].rpartition("\n\n")[0] + "\n"
    b["checkpoint"]["note"] += witness.cosign(text, 1_800_000_000)
    key = witness.verifier().verifier_key_string()
    assert verify(b, witnesses=1, witness_keys=[key]).ok
    report = verify(b, witnesses=2, witness_keys=[key])
    assert report.failures == [
        "checkpoint 3 has 1 valid cosignature(s) by the pinned witnesses, 2 required"
    ]
    stranger = Cosigner.from_signing_key("w.example/witness", SigningKey.generate())
    assert not verify(b, witnesses=1, witness_keys=[stranger.verifier().verifier_key_string()]).ok
