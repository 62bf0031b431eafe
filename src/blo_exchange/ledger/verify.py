"""Checking an exported ledger offline: the bundle format and the verifier [contract,
docs/contracts/ledger.md].

What this module is for: building the export bundle (``GET /v1/ledger/export``) and checking one
with no access to the node, its database or its bus: every leaf hash is recomputed from
``leaf_input``, every root from those leaves, every signature with a key the auditor chose. It
does no I/O; the CLI reads and writes the files.

The bundle (JSON)::

    {"format": "blo-ledger-bundle/1", "origin": ..., "ledger_public_key": <C2SP verifier key>,
     "checkpoint": {"tree_size", "root_hash" (hex), "note"},          the latest one
     "checkpoints": [{"tree_size", "root_hash", "note"}, ...],       every stored one
     "entries": [{"index", "leaf_input" (base64url), "leaf_hash" (hex, as stored),
                  "columns" (the indexed database columns, as stored)}, ...]}

The trust file (a witness's memory, kept by the CLI with mode 0600)::

    {"origin": ..., "ledger_public_key": <verifier key pinned on first use>,
     "checkpoints": [{"tree_size", "root_hash", "note"}, ...]}

How an altered entry is named. The stored ``leaf_hash`` of each entry is exported alongside its
``leaf_input``: an entry whose ``leaf_input`` was changed after it was appended no longer hashes
to its stored leaf hash, which names its index exactly. If both were changed together, the
signed checkpoints still catch it: the smallest signed checkpoint whose root the entries no
longer reproduce bounds the altered index to ``[previous good size, that size)``.

An entry whose indexed database columns (exported as stored) disagree with its ``leaf_input``
is named too: filtered answers are selected by those columns. The who-shared-with-whom summary
(:meth:`VerifyReport.sharing`) is computed from the verified ``leaf_input`` alone.

Which keys are believed. With the auditor's pinned roots (``granted``, from
``ledger.verify_roots``), the ledger key must be one that a ``ledger_key`` statement signed by
every pinned agency grants, and witness and node keys come from the statements too, never from
the bundle's lists. Without, the key pinned in the trust file, ``--key``, or the bundle's own
(trust on first use), and the bundle's witness and node keys: that is the bundle's word.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from blo_exchange.crypto.canonical import b64u_decode, b64u_encode
from blo_exchange.crypto.keys import VerifyKey
from blo_exchange.crypto.note import (
    NoteError,
    cosignatures,
    open_checkpoint,
    parse_cosigner_key,
    parse_verifier_key,
)
from blo_exchange.errors import BloExchangeError
from blo_exchange.ledger.answers import count_sharing, shared_fact
from blo_exchange.ledger.entries import ENTRY_VERSION, column_mismatches, parse_leaf_input
from blo_exchange.ledger.ports import SharingCount
from blo_exchange.ledger.records import check_record
from blo_exchange.ledger.verify_roots import GrantedKeys

__all__ = [
    "BUNDLE_FORMAT",
    "BundleError",
    "Tree",
    "TrustStore",
    "TrustedCheckpoint",
    "VerifyReport",
    "build_bundle",
    "verify_bundle",
]

BUNDLE_FORMAT = "blo-ledger-bundle/1"


class Tree(Protocol):
    """An empty RFC 9162 tree to fill (``ledger.merkle.MemoryTree``; services may not import it)."""

    @property
    def size(self) -> int: ...
    def append_leaf_hash(self, hashed: bytes) -> int: ...
    def root_at(self, size: int) -> bytes: ...


class BundleError(BloExchangeError, ValueError):
    """A bundle or trust file is not even well-formed enough to check."""


@dataclass(frozen=True, slots=True)
class TrustedCheckpoint:
    tree_size: int
    root_hash: bytes
    note: str

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.tree_size, "root_hash": self.root_hash.hex(), "note": self.note}


@dataclass
class TrustStore:
    """What a verifier remembers between runs: the pinned key and the checkpoints it accepted."""

    origin: str | None = None
    ledger_public_key: str | None = None
    checkpoints: list[TrustedCheckpoint] = field(default_factory=list)
    witness_keys: list[str] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: Any) -> TrustStore:
        if not isinstance(data, dict):
            raise BundleError("trust file: not a JSON object")
        return cls(
            origin=_opt_str(data, "origin"),
            ledger_public_key=_opt_str(data, "ledger_public_key"),
            checkpoints=[_checkpoint(c, "trust file") for c in _list(data, "checkpoints")],
            witness_keys=[str(k) for k in _list(data, "witness_keys")],
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "origin": self.origin,
            "ledger_public_key": self.ledger_public_key,
            "checkpoints": [c.to_json() for c in sorted(self.checkpoints, key=_size)],
            "witness_keys": list(self.witness_keys),
        }


@dataclass
class VerifyReport:
    ok: bool
    tree_size: int
    root_hash: bytes
    failures: list[str]
    notes: list[str]
    altered_indexes: list[int]
    accepted: TrustedCheckpoint | None
    key: str | None
    leaf_inputs: list[bytes] = field(default_factory=list)
    witness_keys: list[str] = field(default_factory=list)

    def sharing(self) -> list[SharingCount]:
        """Who shared with whom, from the verified entries (only meaningful when ``ok``)."""
        facts = []
        for leaf in self.leaf_inputs[: self.tree_size]:
            try:
                fact = shared_fact(parse_leaf_input(leaf))
            except (ValueError, KeyError):
                continue
            if fact is not None:
                facts.append(fact)
        return count_sharing(facts)

    def summary(self) -> str:
        head = (
            f"OK: {self.tree_size} entries, root {self.root_hash.hex()}"
            if self.ok
            else f"FAILED: {len(self.failures)} problem(s) with the ledger of "
            f"{self.tree_size} entries"
        )
        return "\n".join([head, *(f"  - {f}" for f in self.failures), *self.notes])


def build_bundle(
    *,
    origin: str,
    ledger_public_key: str,
    checkpoint: Mapping[str, Any],
    checkpoints: Sequence[Mapping[str, Any]],
    leaves: Sequence[tuple[int, bytes, bytes]],
    columns: Mapping[int, Mapping[str, Any]] | None = None,
    unsigned: Sequence[tuple[int, bytes, bytes]] = (),
    witness_keys: Sequence[str] = (),
    node_keys: Mapping[str, Mapping[str, Any]] | None = None,
    statements: Sequence[str] = (),
) -> dict[str, Any]:
    """The export bundle; ``leaves`` are ``(index, leaf_input, stored leaf_hash)``, ``columns``
    each entry's indexed database columns as stored; ``statements`` the signed directory
    statements the node verified (an auditor checks them again against their own roots)."""
    columns = columns or {}
    bundle: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "origin": origin,
        "ledger_public_key": ledger_public_key,
        "witness_keys": list(witness_keys),
        "node_keys": {
            node: {
                "agency": info["agency"],
                "keys": [
                    {
                        "key_id": k["key_id"],
                        "public": b64u_encode(k["public"]),
                        "revoked_at": k["revoked_at"],
                    }
                    for k in info["keys"]
                ],
            }
            for node, info in (node_keys or {}).items()
        },
        "checkpoint": dict(checkpoint),
        "checkpoints": [dict(c) for c in checkpoints],
        "entries": [
            {"index": i, "leaf_input": b64u_encode(leaf), "leaf_hash": h.hex()}
            | ({"columns": dict(columns[i])} if i in columns else {})
            for i, leaf, h in leaves
        ],
        "unsigned_entries": [
            {"index": i, "leaf_input": b64u_encode(leaf), "leaf_hash": h.hex()}
            for i, leaf, h in unsigned
        ],
    }
    if statements:
        bundle["statements"] = list(statements)
    return bundle


def verify_bundle(
    bundle: Any,
    *,
    tree: Tree,
    trust: TrustStore | None = None,
    key: str | None = None,
    witnesses: int = 0,
    witness_keys: Sequence[str] = (),
    directory: Mapping[str, Any] | None = None,
    granted: GrantedKeys | None = None,
) -> VerifyReport:
    """Check ``bundle`` against itself, the chosen key and the checkpoints in ``trust``, and,
    with ``witnesses`` > 0, that its checkpoint carries that many valid cosignatures.

    The key used is, in order of precedence: the one pinned in ``trust``, ``key``, the bundle's.
    The witness keys likewise: ``witness_keys``, those pinned in ``trust``, the bundle's.
    Raises :class:`BundleError` only when the bundle cannot be read at all; every failure of
    the ledger itself is reported in the result.
    """
    trust = trust or TrustStore()
    failures: list[str] = []
    notes: list[str] = []
    altered: list[int] = []

    # (1) The bundle is well-formed.
    if not isinstance(bundle, dict):
        raise BundleError("bundle: not a JSON object")
    origin = _str(bundle, "origin")
    head = _checkpoint(bundle.get("checkpoint"), "bundle")
    history = [_checkpoint(c, "bundle") for c in _list(bundle, "checkpoints")]
    entries = _entries(_list(bundle, "entries"))
    if trust.origin is not None and trust.origin != origin:
        failures.append(f"the bundle is for log {origin!r}, the trust file for {trust.origin!r}")

    # (2) Choose the key: pinned > given > the bundle's own (trust on first use).
    vkey = trust.ledger_public_key or key or _str(bundle, "ledger_public_key")
    try:
        verifier = parse_verifier_key(vkey)
    except NoteError as exc:
        raise BundleError(f"ledger key: {exc}") from None
    if bundle.get("ledger_public_key") != vkey:
        notes.append("note: the bundle names a different ledger key than the one used")
    if granted is None:
        if not trust.ledger_public_key and not key:
            notes.append(
                "note: the ledger key is the bundle's word (trust on first use); "
                "check it against your agencies' roots with --roots"
            )
    elif vkey not in granted.ledger:
        failures.append(
            f"the ledger key {vkey} is not granted by a ledger_key statement signed by every "
            f"pinned agency's root ({len(granted.ledger)} such key(s) in the bundle's "
            f"{granted.statements} verified statement(s)): its checkpoints are refused"
        )

    # (3) The latest checkpoint and every historical one are signed by that key, for this log,
    # and say what their JSON fields say.
    def signed(c: TrustedCheckpoint) -> bool:
        try:
            parsed = open_checkpoint(c.note, [verifier], origin)
        except NoteError as exc:
            failures.append(f"checkpoint {c.tree_size}: signature does not verify ({exc})")
            return False
        if parsed.size != c.tree_size or parsed.root_hash != c.root_hash:
            failures.append(f"checkpoint {c.tree_size}: its note says otherwise")
            return False
        return True

    head_ok = signed(head)

    # (3b) The witnesses: K valid cosignatures on the checkpoint by the chosen witness keys.
    wkeys = list(witness_keys) or trust.witness_keys
    if not wkeys and granted is not None:
        wkeys = list(granted.witnesses)
    elif not wkeys:
        wkeys = [str(k) for k in _list(bundle, "witness_keys")]
        if wkeys and witnesses:
            notes.append("note: witness keys taken from the bundle (pin them with --witness-key)")
    if witnesses:
        try:
            wverifiers = [parse_cosigner_key(k) for k in wkeys]
        except NoteError as exc:
            raise BundleError(f"witness key: {exc}") from None
        valid, invalid = cosignatures(head.note, wverifiers)
        for name in invalid:
            failures.append(f"checkpoint {head.tree_size}: the cosignature by {name} is invalid")
        if len(valid) < witnesses:
            failures.append(
                f"checkpoint {head.tree_size} has {len(valid)} valid cosignature(s) by the "
                f"pinned witnesses, {witnesses} required"
            )
        else:
            notes.append(
                f"cosigned by {len(valid)} witness(es): {', '.join(c.name for c in valid)}"
            )
    history = [c for c in history if c.tree_size <= head.tree_size and signed(c)]

    # (4) Entries are exactly 0 .. size-1; each leaf_input hashes to its stored leaf hash.
    if tree.size:
        raise BundleError("the tree to verify into must start empty")
    leaf_inputs: list[bytes] = []
    for expected, (index, leaf_input, stored, columns) in enumerate(entries):
        if index != expected:
            failures.append(f"entry {expected} is missing (the next one is {index})")
            break
        h = _leaf_hash(leaf_input)
        if stored is not None and stored != h:
            altered.append(index)
            failures.append(f"entry {index} was altered: its leaf_input no longer has its hash")
        if columns is not None:
            wrong = column_mismatches(leaf_input, columns)
            if wrong:
                altered.append(index)
                failures.append(
                    f"entry {index}: its database column(s) {', '.join(wrong)} disagree with its "
                    "leaf_input"
                )
        tree.append_leaf_hash(h)
        leaf_inputs.append(leaf_input)
    if tree.size < head.tree_size and not any("missing" in f for f in failures):
        failures.append(f"entries missing: {tree.size} exported for tree size {head.tree_size}")
    size = min(tree.size, head.tree_size)

    # (5) The entries reproduce the signed root; if not, bound the damage with the history.
    if tree.size >= head.tree_size and tree.root_at(head.tree_size) != head.root_hash:
        failures.append(f"the entries do not reproduce checkpoint {head.tree_size}'s root")
        good = 0
        for c in sorted(history, key=_size):
            if c.tree_size > size:
                break
            if tree.root_at(c.tree_size) == c.root_hash:
                good = c.tree_size
                continue
            lo, hi = good, c.tree_size
            where = f"entry {lo}" if hi - lo == 1 else f"an entry in [{lo}, {hi})"
            failures.append(f"{where} differs from what checkpoint {hi} signed")
            break

    # (6) Every trusted checkpoint is a prefix of this one. With every entry at hand, recomputing
    # its root from them is a consistency check stronger than a proof.
    signed_now = [head, *history]
    for t in sorted(trust.checkpoints, key=_size):
        if t.tree_size > head.tree_size:
            failures.append(f"log truncated from {t.tree_size} to {head.tree_size} entries")
        elif any(c.tree_size == t.tree_size and c.root_hash != t.root_hash for c in signed_now):
            failures.append(
                f"fork: two signed checkpoints of size {t.tree_size} with different roots"
            )
        elif t.tree_size <= tree.size and tree.root_at(t.tree_size) != t.root_hash:
            failures.append(
                f"fork: checkpoint {head.tree_size} is not consistent with trusted checkpoint "
                f"{t.tree_size}"
            )

    # (6b) Each entry's signed record verifies with its node's key, and gives its fields.
    if directory is None and granted is not None:
        directory = granted.node_keys
    elif directory is None:
        directory = bundle.get("node_keys") or {}
        if directory:
            notes.append("note: node keys taken from the bundle (give your own: --directory)")
    node_keys, node_agencies = _directory(directory)
    # Entries written before records existed (v 1) are not checked, but only before the first
    # entry with one: a record-less entry after it is a failure.
    with_records = False
    for index, leaf_input in enumerate(leaf_inputs[: head.tree_size]):
        try:
            version = parse_leaf_input(leaf_input).get("v")
        except ValueError:
            version = None
        if version == ENTRY_VERSION:
            with_records = True
            try:
                why = check_record(leaf_input, node_keys, node_agencies)
            except ValueError as exc:
                why = f"it is not an entry ({exc})"
        elif with_records:
            why = f"a version {version!r} entry after entries with signed records"
        else:
            why = None
        if why is not None:
            altered.append(index)
            failures.append(f"entry {index}: {why}")

    # (7) Stored entries beyond the checkpoint are named: nothing vouches for them. A few are
    # normal (appended since the last checkpoint); ones that stay are rows the writer refused.
    tail = [i for i, _, _, _ in _entries(_list(bundle, "unsigned_entries"))]
    if tail:
        shown = ", ".join(str(i) for i in tail[:10]) + (", …" if len(tail) > 10 else "")
        notes.append(
            f"note: {len(tail)} stored entr{'y' if len(tail) == 1 else 'ies'} beyond checkpoint "
            f"{head.tree_size}, covered by no signed checkpoint and not verified: {shown}"
        )

    ok = head_ok and not failures
    return VerifyReport(
        ok=ok,
        tree_size=head.tree_size,
        root_hash=head.root_hash,
        failures=failures,
        notes=notes,
        altered_indexes=altered,
        accepted=head if ok else None,
        key=vkey,
        leaf_inputs=leaf_inputs,
        witness_keys=wkeys,
    )


# --- parsing ------------------------------------------------------------------------------------


def _directory(
    data: Mapping[str, Any],
) -> tuple[dict[str, dict[str, VerifyKey]], dict[str, str]]:
    """Node keys and agencies from a ``node_keys`` object (the bundle's or ``--directory``)."""
    if not isinstance(data, dict):
        raise BundleError("node_keys: expected an object")
    keys: dict[str, dict[str, VerifyKey]] = {}
    agencies: dict[str, str] = {}
    try:
        for node, info in data.items():
            agencies[node] = str(info["agency"])
            keys[node] = {
                str(k["key_id"]): VerifyKey(
                    key_id=str(k["key_id"]), public=b64u_decode(k["public"])
                )
                for k in info["keys"]
            }
    except (KeyError, TypeError, ValueError) as exc:
        raise BundleError(f"node_keys: {exc}") from None
    return keys, agencies


def _leaf_hash(leaf_input: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf_input).digest()


def _size(c: TrustedCheckpoint) -> int:
    return c.tree_size


def _str(data: Mapping[str, Any], name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str):
        raise BundleError(f"{name}: expected a string")
    return value


def _opt_str(data: Mapping[str, Any], name: str) -> str | None:
    return None if data.get(name) is None else _str(data, name)


def _list(data: Mapping[str, Any], name: str) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        raise BundleError(f"{name}: expected a list")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BundleError(f"{name}: expected a non-negative integer")
    return value


def _hex32(value: Any, name: str) -> bytes:
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise BundleError(f"{name}: expected 32 bytes in hex")
    return raw


def _checkpoint(data: Any, where: str) -> TrustedCheckpoint:
    if not isinstance(data, dict):
        raise BundleError(f"{where}: a checkpoint is not a JSON object")
    return TrustedCheckpoint(
        tree_size=_int(data, "tree_size"),
        root_hash=_hex32(data.get("root_hash"), "root_hash"),
        note=_str(data, "note"),
    )


def _entries(
    items: list[Any],
) -> list[tuple[int, bytes, bytes | None, Mapping[str, Any] | None]]:
    out: list[tuple[int, bytes, bytes | None, Mapping[str, Any] | None]] = []
    for item in items:
        if not isinstance(item, dict):
            raise BundleError("entries: an entry is not a JSON object")
        try:
            leaf_input = b64u_decode(_str(item, "leaf_input"))
        except ValueError as exc:
            raise BundleError(f"entry {item.get('index')}: leaf_input: {exc}") from None
        stored = item.get("leaf_hash")
        columns = item.get("columns")
        if columns is not None and not isinstance(columns, dict):
            raise BundleError(f"entry {item.get('index')}: columns: expected an object")
        out.append(
            (
                _int(item, "index"),
                leaf_input,
                None if stored is None else _hex32(stored, "leaf_hash"),
                columns,
            )
        )
    return out
