"""ledger.merkle against a naive reference: RFC 9162 section 2.1 transcribed as recursion.

The reference recomputes everything from the leaves, so it shares no code (and no storage
model) with the implementation under test.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from functools import cache

import pytest

from blo_exchange.ledger import merkle
from blo_exchange.ledger.merkle import MemoryTree


class Reference:
    """MTH, PATH and PROOF of RFC 9162 sections 2.1.1, 2.1.3.1 and 2.1.4.1, over leaf inputs."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.leaves = leaves
        self.mth: Callable[[int, int], bytes] = cache(self._mth)

    def _mth(self, start: int, end: int) -> bytes:
        n = end - start
        if n == 0:
            return merkle.EMPTY_ROOT
        if n == 1:
            return merkle.leaf_hash(self.leaves[start])
        k = _largest_power_of_two_below(n)
        return merkle.node_hash(self.mth(start, start + k), self.mth(start + k, end))

    def path(self, m: int, start: int, end: int) -> list[bytes]:
        n = end - start
        if n == 1:
            return []
        k = _largest_power_of_two_below(n)
        if m < k:
            return [*self.path(m, start, start + k), self.mth(start + k, end)]
        return [*self.path(m - k, start + k, end), self.mth(start, start + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        return self._subproof(m, 0, n, True) if 0 < m < n else []

    def _subproof(self, m: int, start: int, end: int, b: bool) -> list[bytes]:
        n = end - start
        if m == n:
            return [] if b else [self.mth(start, end)]
        k = _largest_power_of_two_below(n)
        if m <= k:
            return [*self._subproof(m, start, start + k, b), self.mth(start + k, end)]
        return [*self._subproof(m - k, start + k, end, False), self.mth(start, start + k)]


def _largest_power_of_two_below(n: int) -> int:
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def _leaves(count: int, salt: int) -> list[bytes]:
    return [f"leaf {salt} {i}".encode() for i in range(count)]


def _build_in_batches(leaves: list[bytes], batches: list[int]) -> MemoryTree:
    """Append through merkle.append_many, checking what each batch fetches and returns."""
    tree = MemoryTree()
    store: dict[tuple[int, int], bytes] = {}
    fetched: list[tuple[int, int]] = []

    def get(level: int, index: int) -> bytes:
        fetched.append((level, index))
        return store[(level, index)]

    pos = 0
    for batch in batches:
        chunk = leaves[pos : pos + batch]
        fetched.clear()
        new = merkle.append_many(pos, [merkle.leaf_hash(x) for x in chunk], get)
        # Only nodes that existed before the batch are fetched, each once, all from the old root.
        assert len(fetched) == len(set(fetched))
        assert set(fetched) <= set(merkle.root_nodes(pos))
        for level, index, node in new:
            assert (level, index) not in store
            store[(level, index)] = node
        pos += len(chunk)
        tree.extend(chunk)
        # Exactly the perfect nodes of a tree of `pos` leaves are stored.
        assert set(store) == {
            (level, index) for level in range(pos.bit_length()) for index in range(pos >> level)
        }
        assert store == dict(tree.nodes)
    return tree


def _check_tree(tree: MemoryTree, ref: Reference, rng: random.Random, samples: int) -> None:
    size = tree.size
    for n in range(size + 1):
        assert tree.root_at(n) == ref.mth(0, n)
        assert merkle.root_hash(n, tree.nodes) == ref.mth(0, n)
    for _ in range(samples):
        n = rng.randint(1, size)
        i = rng.randrange(n)
        proof = tree.inclusion_proof(i, n)
        assert proof == ref.path(i, 0, n)
        merkle.verify_inclusion(tree.leaf_hash(i), i, n, proof, ref.mth(0, n))
        m = rng.randint(0, n)
        cproof = tree.consistency_proof(m, n)
        assert cproof == ref.proof(m, n)
        merkle.verify_consistency(m, n, ref.mth(0, m), ref.mth(0, n), cproof)


def _only_needed_nodes(tree: MemoryTree, m: int, n: int, i: int) -> None:
    """Each two-step function works from exactly the nodes its *_nodes function names."""
    all_nodes = tree.nodes

    def subset(names: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {name: all_nodes[name] for name in names}

    assert merkle.root_hash(n, subset(merkle.root_nodes(n))) == tree.root_at(n)
    assert merkle.inclusion_proof(
        i, n, subset(merkle.inclusion_proof_nodes(i, n))
    ) == tree.inclusion_proof(i, n)
    assert merkle.consistency_proof(
        m, n, subset(merkle.consistency_proof_nodes(m, n))
    ) == tree.consistency_proof(m, n)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_random_batches_against_the_reference(seed: int) -> None:
    rng = random.Random(seed)
    count = rng.randint(200, 300)
    batches: list[int] = []
    while sum(batches) < count:
        batches.append(rng.choice([0, 1, 1, 2, 3, 5, 8, 13, 31, 64]))
    leaves = _leaves(sum(batches), seed)
    tree = _build_in_batches(leaves, batches)
    _check_tree(tree, Reference(leaves), rng, samples=400)


def test_every_proof_of_small_trees_against_the_reference() -> None:
    leaves = _leaves(40, 99)
    ref = Reference(leaves)
    tree = MemoryTree()
    tree.extend(leaves)
    for n in range(1, 41):
        root = ref.mth(0, n)
        for i in range(n):
            proof = tree.inclusion_proof(i, n)
            assert proof == ref.path(i, 0, n)
            merkle.verify_inclusion(tree.leaf_hash(i), i, n, proof, root)
            _only_needed_nodes(tree, i, n, i)
        for m in range(n + 1):
            proof = tree.consistency_proof(m, n)
            assert proof == ref.proof(m, n)
            merkle.verify_consistency(m, n, ref.mth(0, m), root, proof)


def test_proof_sizes_are_logarithmic() -> None:
    tree = MemoryTree()
    tree.extend(_leaves(1000, 7))
    n = tree.size
    bound = (n - 1).bit_length()
    for i in (0, 1, 500, 511, 512, 998, 999):
        assert len(merkle.inclusion_proof_nodes(i, n)) <= 2 * bound
    for m in (1, 2, 3, 255, 256, 257, 999):
        assert len(merkle.consistency_proof_nodes(m, n)) <= 3 * bound


@pytest.mark.parametrize("seed", range(40))
def test_any_batching_gives_the_reference_tree(seed: int) -> None:
    # Seeded rather than hypothesis-driven: hypothesis writes a cache directory into the repo.
    rng = random.Random(1000 + seed)
    batches = [rng.choice([0, 0, 1, 2, rng.randint(0, 40)]) for _ in range(rng.randint(1, 12))]
    leaves = _leaves(sum(batches), seed)
    tree = _build_in_batches(leaves, batches)
    if tree.size:
        _check_tree(tree, Reference(leaves), rng, samples=50)
    else:
        assert tree.root() == merkle.EMPTY_ROOT


@pytest.mark.parametrize("seed", range(20))
def test_a_compact_range_gives_the_roots_of_the_full_tree(seed: int) -> None:
    rng = random.Random(seed)
    leaves = [rng.randbytes(rng.randrange(9)) for _ in range(rng.randrange(70))]
    cut = rng.randrange(len(leaves) + 1)
    full = MemoryTree()
    full.extend(leaves)
    compact = merkle.CompactRange()
    compact.extend([merkle.leaf_hash(x) for x in leaves[:cut]])
    assert compact.root() == full.root_at(cut)
    resumed = merkle.CompactRange(compact.size, dict(compact.nodes))
    resumed.extend([merkle.leaf_hash(x) for x in leaves[cut:]])
    assert resumed.size == len(leaves)
    assert resumed.root() == full.root()
