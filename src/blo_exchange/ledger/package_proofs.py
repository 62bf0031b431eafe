"""Ledger proofs in an offline package (docs/contracts/packages.md): collecting them where the
ledger is, and checking them where it is not.

A proof member (``proofs/<alert_id>.json``) is canonical JSON::

    {"alert_id": ..., "leaf_index": n, "tree_size": N, "leaf_input": <base64url>,
     "inclusion_path": [<base64url 32-byte hash>, ...]}

and every proof in a package is under its one signed checkpoint (``checkpoint.txt``, a C2SP
note). :class:`LedgerProofSource` builds them from the store (``LedgerReads``: what it says is
not believed here either; the importer checks it all). :class:`PackageProofChecker` checks, in
order: (1) the checkpoint is from this node's log origin and its note verifies with a ledger
key this node trusts; (2) each proof is for the checkpoint's tree size; (3) its ``leaf_input``
is an ``alert_shared`` entry of the same alert id and the same envelope bytes (SHA-256); (4) the
inclusion path leads from that leaf to the checkpoint's root.

Not checked: that the checkpoint is the newest, nor that witnesses cosigned it (a package is
checked offline; an auditor's ``ledger verify`` does both from an export).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from blo_exchange.crypto.canonical import (
    b64u_decode,
    b64u_encode,
    canonical_json,
    parse_canonical_json,
)
from blo_exchange.crypto.note import NoteError, NoteVerifier, open_checkpoint
from blo_exchange.crypto.package import CHECKPOINT_MEMBER
from blo_exchange.errors import InvalidPackage
from blo_exchange.ledger import merkle
from blo_exchange.ledger.entries import parse_leaf_input
from blo_exchange.ledger.ports import EntryFilter, LedgerReads
from blo_exchange.services.package_parts import LedgerProofs, proof_member

__all__ = ["LedgerConfirmations", "LedgerProofSource", "PackageProofChecker"]

_PROOF_KEYS = frozenset({"alert_id", "leaf_index", "tree_size", "leaf_input", "inclusion_path"})


class LedgerProofSource:
    """Proofs against the latest stored checkpoint, for the alerts packed."""

    def __init__(self, store: LedgerReads, *, origin: str) -> None:
        self._store = store
        self._origin = origin

    async def collect(self, alerts: Sequence[tuple[str, str]]) -> LedgerProofs:
        checkpoint = await self._store.latest_checkpoint()
        if checkpoint is None:
            return LedgerProofs(origin=self._origin, problem="the ledger has no checkpoint yet")
        size = checkpoint.tree_size
        proofs: dict[str, bytes] = {}
        for alert_id, digest in alerts:
            wanted = EntryFilter(type="alert_shared", alert_id=alert_id)
            for index, leaf_input in await self._store.entries(wanted, after=-1, limit=4):
                fields = parse_leaf_input(leaf_input)
                if index >= size or fields.get("envelope_sha256") != digest:
                    continue  # not under the checkpoint yet, or other bytes: no proof
                path = await self._store.inclusion_proof(index, size)
                proofs[alert_id] = canonical_json(
                    {
                        "alert_id": alert_id,
                        "leaf_index": index,
                        "tree_size": size,
                        "leaf_input": b64u_encode(leaf_input),
                        "inclusion_path": [b64u_encode(h) for h in path],
                    }
                )
                break
        return LedgerProofs(origin=self._origin, checkpoint=checkpoint.note, proofs=proofs)


class LedgerConfirmations:
    """Which alerts the ledger says an agency's node received (``DeliveryConfirmations``), read
    from the entries' ``leaf_input``: for an operator's report, not checked against a checkpoint."""

    def __init__(self, store: LedgerReads) -> None:
        self._store = store

    async def confirmed(self, alert_ids: Sequence[str], agency: str) -> set[str]:
        found: set[str] = set()
        for alert_id in alert_ids:
            wanted = EntryFilter(type="alert_delivered", alert_id=alert_id)
            rows = await self._store.entries(wanted, after=-1, limit=100)
            if any(parse_leaf_input(leaf).get("actor_agency") == agency for _, leaf in rows):
                found.add(alert_id)
        return found


class PackageProofChecker:
    """Checks a package's checkpoint and proofs with the ledger keys this node trusts."""

    def __init__(
        self, *, origin: str, ledger_keys: Callable[[], Awaitable[Sequence[NoteVerifier]]]
    ) -> None:
        self._origin = origin
        self._ledger_keys = ledger_keys

    async def check(
        self, origin: str, checkpoint: bytes, proofs: Mapping[str, tuple[str, bytes]]
    ) -> int:
        # (1) This node's log, signed by a key this node trusts for it.
        if origin != self._origin:
            raise InvalidPackage(CHECKPOINT_MEMBER, "another_ledger")
        verifiers = await self._ledger_keys()
        if not verifiers:
            raise InvalidPackage(CHECKPOINT_MEMBER, "no_trusted_ledger_key")
        try:
            head = open_checkpoint(checkpoint.decode("utf-8"), verifiers, self._origin)
        except (NoteError, UnicodeDecodeError):
            raise InvalidPackage(CHECKPOINT_MEMBER, "bad_checkpoint_signature") from None
        for alert_id, (digest, raw) in sorted(proofs.items()):
            name = proof_member(alert_id)
            try:
                proof = _parse(raw)
                # (2) Under this checkpoint.
                if proof["tree_size"] != head.size or proof["alert_id"] != alert_id:
                    raise InvalidPackage(name, "not_under_checkpoint")
                # (3) The entry that says this alert, these bytes, were shared.
                leaf_input = b64u_decode(proof["leaf_input"])
                fields = parse_leaf_input(leaf_input)
                if (
                    fields.get("type") != "alert_shared"
                    or fields.get("alert_id") != alert_id
                    or fields.get("envelope_sha256") != digest
                ):
                    raise InvalidPackage(name, "entry_is_not_this_envelope")
                # (4) The path to the signed root.
                merkle.verify_inclusion(
                    merkle.leaf_hash(leaf_input),
                    proof["leaf_index"],
                    head.size,
                    [b64u_decode(h) for h in proof["inclusion_path"]],
                    head.root_hash,
                )
            except merkle.MerkleError:
                raise InvalidPackage(name, "inclusion_proof_fails") from None
            except (ValueError, TypeError, KeyError):
                raise InvalidPackage(name, "malformed_proof") from None
        return head.size


def _parse(raw: bytes) -> dict[str, Any]:
    proof = parse_canonical_json(raw)
    if not isinstance(proof, dict) or set(proof) != _PROOF_KEYS:
        raise ValueError("proof shape")
    for name in ("leaf_index", "tree_size"):
        if type(proof[name]) is not int or proof[name] < 0:
            raise ValueError(name)
    if not isinstance(proof["inclusion_path"], list) or not isinstance(proof["leaf_input"], str):
        raise ValueError("proof fields")
    return proof
