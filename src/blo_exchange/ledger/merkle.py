"""The ledger's Merkle tree: RFC 9162 (Certificate Transparency v2) section 2.1, pure functions.

What this module is for: hashing leaves and nodes, deciding which stored nodes a root or a
proof needs, assembling roots and proofs from those nodes, and verifying proofs. It does no I/O.

Storage model. Only hashes of *perfect* subtrees are stored, addressed ``(level, index)``: level 0
holds the leaf hashes (index = leaf index) and node ``(L, i)`` covers the leaves
``[i * 2**L, (i + 1) * 2**L)``. Node ``(L, i)`` exists in a tree of size ``n`` exactly when
``(i + 1) * 2**L <= n``, so a node once written never changes and the table is append-only.
A subtree of the RFC 9162 tree that is not perfect (it touches the right edge of the tree) is
never stored; it is recomputed from the O(log n) perfect nodes that tile it.

Every root and proof is built in two steps so that the database can fetch in one query:
``*_nodes(...)`` names the perfect nodes needed; the second step takes a mapping from those
``(level, index)`` pairs to hashes and does the hashing.

What it is not for: leaf encoding (the caller hashes canonical JSON with :func:`leaf_hash`),
checkpoints and signatures (``crypto.note``), SQL (``ledger`` repository).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import MappingProxyType

from blo_exchange.errors import BloExchangeError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "MemoryTree",
    "MerkleError",
    "Node",
    "ProofError",
    "append",
    "append_many",
    "consistency_proof",
    "consistency_proof_nodes",
    "inclusion_proof",
    "inclusion_proof_nodes",
    "leaf_hash",
    "node_hash",
    "root_from_inclusion",
    "root_hash",
    "root_nodes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

Node = tuple[int, int]
"""``(level, index)`` of a perfect subtree."""

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class MerkleError(BloExchangeError, ValueError):
    """A tree size, index or stored node is not usable (bad arguments, a missing node)."""


class ProofError(MerkleError):
    """A proof did not verify. Raised for every way a proof can be wrong."""


def leaf_hash(leaf_input: bytes) -> bytes:
    """``SHA-256(0x00 || leaf_input)``."""
    return hashlib.sha256(_LEAF_PREFIX + leaf_input).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


# --- appending -------------------------------------------------------------------------------


def append(
    size: int, new_leaf_hash: bytes, get: Callable[[int, int], bytes]
) -> list[tuple[int, int, bytes]]:
    """The perfect nodes completed by appending leaf number ``size`` to a tree of ``size`` leaves.

    Returns ``(level, index, hash)`` bottom-up: the leaf itself, then every parent it completes.
    ``get(level, index)`` is called for the left siblings, all of which are nodes of
    ``root_nodes(size)``.
    """
    return append_many(size, [new_leaf_hash], get)


def append_many(
    size: int, leaf_hashes: Sequence[bytes], get: Callable[[int, int], bytes]
) -> list[tuple[int, int, bytes]]:
    """The perfect nodes completed by appending ``leaf_hashes`` to a tree of ``size`` leaves.

    Nodes computed within the batch are reused, so ``get`` is called only for nodes that existed
    before it: at most once each, and only for nodes in ``root_nodes(size)`` (so the caller may
    prefetch those in one query and pass ``lambda level, index: fetched[(level, index)]``).
    """
    _check_size(size)
    new: dict[Node, bytes] = {}
    out: list[tuple[int, int, bytes]] = []
    for offset, h in enumerate(leaf_hashes):
        _check_hash(h, "leaf hash")
        level, index = 0, size + offset
        new[(level, index)] = h
        out.append((level, index, h))
        # A right child (odd index) completes its parent.
        while index & 1:
            sibling = (level, index - 1)
            left = new[sibling] if sibling in new else _fetch(get, sibling)
            _check_hash(left, f"stored node {sibling}")
            h = node_hash(left, h)
            level, index = level + 1, index >> 1
            new[(level, index)] = h
            out.append((level, index, h))
    return out


def _fetch(get: Callable[[int, int], bytes], node: Node) -> bytes:
    try:
        return get(*node)
    except KeyError:
        raise MerkleError(f"node {node} was not supplied") from None


# --- which perfect nodes tile a range ---------------------------------------------------------


def _range_nodes(start: int, end: int) -> list[Node]:
    """The perfect nodes tiling ``[start, end)``, left to right, largest first.

    Only valid when ``start`` is a multiple of a power of two greater than ``end - start``
    (true for every subtree of an RFC 9162 tree, including the whole tree at ``start = 0``).
    """
    nodes: list[Node] = []
    remaining = end - start
    for level in range(remaining.bit_length() - 1, -1, -1):
        if remaining >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


def _fold(group: Sequence[Node], nodes: Mapping[Node, bytes]) -> bytes:
    """Hash of the subtree tiled by ``group`` (right-to-left, as RFC 9162 nests it)."""
    h = _lookup(group[-1], nodes)
    for node in reversed(group[:-1]):
        h = node_hash(_lookup(node, nodes), h)
    return h


def _lookup(node: Node, nodes: Mapping[Node, bytes]) -> bytes:
    try:
        h = nodes[node]
    except KeyError:
        raise MerkleError(f"node {node} was not supplied") from None
    _check_hash(h, f"node {node}")
    return h


def _flatten(plan: Iterable[Sequence[Node]]) -> list[Node]:
    return list(dict.fromkeys(node for group in plan for node in group))


# --- roots -------------------------------------------------------------------------------------


def root_nodes(size: int) -> list[Node]:
    """The perfect nodes whose hashes give the root of a tree of ``size`` leaves."""
    _check_size(size)
    return _range_nodes(0, size)


def root_hash(size: int, nodes: Mapping[Node, bytes]) -> bytes:
    """The root of a tree of ``size`` leaves, from the nodes named by :func:`root_nodes`."""
    group = root_nodes(size)
    return _fold(group, nodes) if group else EMPTY_ROOT


# --- inclusion proofs (RFC 9162 section 2.1.3.1) -----------------------------------------------


def _inclusion_plan(index: int, size: int) -> list[list[Node]]:
    _check_size(size)
    if not 0 <= index < size:
        raise MerkleError(f"leaf index {index} is not in a tree of size {size}")
    plan: list[list[Node]] = []
    # Bottom-up: at each level the sibling of the node holding the leaf, if the tree reaches it.
    # A sibling that starts beyond the tree is absent (the RFC promotes the node instead); one
    # that straddles the right edge is a subtree of the RFC tree that is not perfect.
    for level in range((size - 1).bit_length()):
        start = ((index >> level) ^ 1) << level
        if start < size:
            plan.append(_range_nodes(start, min(start + (1 << level), size)))
    return plan


def inclusion_proof_nodes(index: int, size: int) -> list[Node]:
    """The perfect nodes needed for the inclusion proof of leaf ``index`` in a tree of ``size``."""
    return _flatten(_inclusion_plan(index, size))


def inclusion_proof(index: int, size: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The RFC 9162 inclusion proof (audit path) of leaf ``index`` in a tree of ``size``."""
    return [_fold(group, nodes) for group in _inclusion_plan(index, size)]


# --- consistency proofs (RFC 9162 section 2.1.4.1) ---------------------------------------------


def _consistency_plan(first: int, second: int) -> list[list[Node]]:
    _check_size(first)
    _check_size(second)
    if first > second:
        raise MerkleError(f"first size {first} is larger than second size {second}")
    if first == 0 or first == second:
        return []
    # SUBPROOF(m, D[start:start+n], b) of the RFC, unrolled. Elements are appended in the RFC's
    # order: the recursion's own elements come first, so the ones found on the way down are
    # collected and then reversed.
    tail: list[list[Node]] = []
    start, m, n, whole = 0, first, second, True
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)  # largest power of two smaller than n
        if m <= k:
            tail.append(_range_nodes(start + k, start + n))
            n = k
        else:
            tail.append(_range_nodes(start, start + k))
            start, m, n, whole = start + k, m - k, n - k, False
    head = [] if whole else [_range_nodes(start, start + m)]
    return head + tail[::-1]


def consistency_proof_nodes(first: int, second: int) -> list[Node]:
    """The perfect nodes needed for the consistency proof from size ``first`` to ``second``."""
    return _flatten(_consistency_plan(first, second))


def consistency_proof(first: int, second: int, nodes: Mapping[Node, bytes]) -> list[bytes]:
    """The RFC 9162 consistency proof between the trees of sizes ``first`` and ``second``.

    Empty when ``first`` is 0 or equal to ``second``.
    """
    return [_fold(group, nodes) for group in _consistency_plan(first, second)]


# --- verification (RFC 9162 sections 2.1.3.2 and 2.1.4.2) --------------------------------------


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root implied by an inclusion proof; :class:`ProofError` if the proof is malformed.

    The result means nothing until compared with a trusted root; :func:`verify_inclusion` does.
    """
    # (1) The sizes and hashes are well formed; the index is inside the tree.
    _check_proof_hash(leaf_hash)
    for p in proof:
        _check_proof_hash(p)
    if not 0 <= index < size:
        raise ProofError("leaf index outside the tree")
    # (2)-(4) Walk up the tree, hashing the proof in on the side the index says.
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    # (5) The proof reached the top of the tree.
    if sn != 0:
        raise ProofError("inclusion proof too short")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf ``index`` of the tree of ``size`` leaves with ``root`` has ``leaf_hash``.

    Raises :class:`ProofError` on any failure; returns nothing on success.
    """
    _check_proof_hash(root)
    if root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of ``second`` leaves with ``second_root`` extends the tree of
    ``first`` leaves with ``first_root``.

    Raises :class:`ProofError` on any failure; returns nothing on success. Stricter than the
    RFC's algorithm on the edges it leaves open: every hash must be 32 bytes, a size-0 tree must
    have the empty root, and equal sizes need equal roots and an empty proof. What is *not*
    checked: that ``second_root`` of a tree extending the empty tree is right (nothing can be).
    """
    # (0) Sizes, hash lengths and the cases the RFC's algorithm does not cover.
    for h in (first_root, second_root, *proof):
        _check_proof_hash(h)
    if not 0 <= first <= second:
        raise ProofError("first size must not exceed second size")
    if first == 0:
        if proof:
            raise ProofError("consistency proof from the empty tree must be empty")
        if first_root != EMPTY_ROOT or (second == 0 and second_root != EMPTY_ROOT):
            raise ProofError("root of an empty tree is not the empty root")
        return
    if first == second:
        if proof:
            raise ProofError("consistency proof between equal sizes must be empty")
        if first_root != second_root:
            raise ProofError("roots differ for the same tree size")
        return
    # (1) The proof is not empty.
    if not proof:
        raise ProofError("consistency proof is empty")
    # (2) When the first tree is a perfect subtree, its root is the proof's implicit first node.
    path = list(proof)
    if first & (first - 1) == 0:
        path.insert(0, first_root)
    # (3)-(4) Start at the first tree's last leaf, skipping the levels where it is a right child.
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    # (5)-(6) Rebuild both roots.
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof too long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # (7) Both roots match and the proof reached the top of the second tree.
    if sn != 0:
        raise ProofError("consistency proof too short")
    if fr != first_root:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != second_root:
        raise ProofError("consistency proof does not lead to the second root")


# --- an in-memory store ------------------------------------------------------------------------


class CompactRange:
    """The right edge of a tree: only the perfect nodes of :func:`root_nodes` (at most 64).

    Enough to append leaves and compute roots from what one verified oneself, without trusting
    any stored node: the ledger writer keeps one of what it appended, the servers one of what
    they checked against a signed checkpoint, a witness one of what it cosigned.
    """

    def __init__(self, size: int = 0, nodes: Mapping[Node, bytes] | None = None) -> None:
        _check_size(size)
        wanted = root_nodes(size)
        given = dict(nodes or {})
        missing = [n for n in wanted if n not in given]
        if missing:
            raise MerkleError(f"a compact range of size {size} needs nodes {missing}")
        for n in wanted:
            _check_hash(given[n], f"node {n}")
        self._size = size
        self._nodes = {n: given[n] for n in wanted}

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> Mapping[Node, bytes]:
        return MappingProxyType(self._nodes)

    def root(self) -> bytes:
        return root_hash(self._size, self._nodes)

    def extend(self, leaf_hashes: Sequence[bytes]) -> None:
        new = append_many(self._size, leaf_hashes, lambda lv, ix: self._nodes[(lv, ix)])
        merged = {**self._nodes, **{(lv, ix): h for lv, ix, h in new}}
        self._size += len(leaf_hashes)
        self._nodes = {n: merged[n] for n in root_nodes(self._size)}

    def copy(self) -> CompactRange:
        return CompactRange(self._size, self._nodes)


class MemoryTree:
    """The perfect nodes of a tree kept in a dict: for tests and the offline verifier."""

    def __init__(self) -> None:
        self._nodes: dict[Node, bytes] = {}
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    @property
    def nodes(self) -> Mapping[Node, bytes]:
        """Every stored perfect node; read-only."""
        return MappingProxyType(self._nodes)

    def append(self, leaf_input: bytes) -> int:
        """Hash ``leaf_input`` as a leaf and append it; returns its index."""
        return self.append_leaf_hash(leaf_hash(leaf_input))

    def append_leaf_hash(self, hashed: bytes) -> int:
        """Append an already hashed leaf; returns its index."""
        self._store(append(self._size, hashed, self._get))
        self._size += 1
        return self._size - 1

    def extend(self, leaf_inputs: Iterable[bytes]) -> None:
        """Append many leaves at once (through :func:`append_many`)."""
        self.extend_leaf_hashes([leaf_hash(x) for x in leaf_inputs])

    def extend_leaf_hashes(self, hashed: Sequence[bytes]) -> None:
        self._store(append_many(self._size, hashed, self._get))
        self._size += len(hashed)

    def leaf_hash(self, index: int) -> bytes:
        if not 0 <= index < self._size:
            raise MerkleError(f"leaf index {index} is not in a tree of size {self._size}")
        return self._nodes[(0, index)]

    def root(self) -> bytes:
        return self.root_at(self._size)

    def root_at(self, size: int) -> bytes:
        self._check_within(size)
        return root_hash(size, self._nodes)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        size = self._size if size is None else size
        self._check_within(size)
        return inclusion_proof(index, size, self._nodes)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        second = self._size if second is None else second
        self._check_within(second)
        return consistency_proof(first, second, self._nodes)

    def _get(self, level: int, index: int) -> bytes:
        return self._nodes[(level, index)]

    def _store(self, new: Iterable[tuple[int, int, bytes]]) -> None:
        for level, index, h in new:
            self._nodes[(level, index)] = h

    def _check_within(self, size: int) -> None:
        if not 0 <= size <= self._size:
            raise MerkleError(f"size {size} is beyond the tree's {self._size} leaves")


# --- argument checks ----------------------------------------------------------------------------


def _check_size(size: int) -> None:
    if size < 0:
        raise MerkleError(f"tree size {size} is negative")


def _check_hash(h: bytes, what: str) -> None:
    if len(h) != HASH_SIZE:
        raise MerkleError(f"{what} is {len(h)} bytes, not {HASH_SIZE}")


def _check_proof_hash(h: bytes) -> None:
    if len(h) != HASH_SIZE:
        raise ProofError("hash of the wrong length")
