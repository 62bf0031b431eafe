"""Known answers for ledger.merkle, taken verbatim from github.com/transparency-dev/merkle.

Sources (Apache-2.0), each cited where it is used:
- testonly/constants.go  leaf inputs, the hash of every perfect node, roots for sizes 0..8
- proof/verify_test.go   published inclusion and consistency proofs, and the corruption probes
- proof/proof_test.go    which stored nodes each proof needs (same (level, index) addressing)
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

import pytest

from blo_exchange.ledger import merkle
from blo_exchange.ledger.merkle import EMPTY_ROOT, MemoryTree, MerkleError, ProofError


def h(s: str) -> bytes:
    return bytes.fromhex(s)


# testonly/constants.go LeafInputs()
LEAVES = [
    h(""),
    h("00"),
    h("10"),
    h("2021"),
    h("3031"),
    h("40414243"),
    h("5051525354555657"),
    h("606162636465666768696a6b6c6d6e6f"),
]

# testonly/constants.go RootHashes(), indexed by tree size.
ROOTS = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# testonly/constants.go NodeHashes(): [level][index], every perfect node of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")],
]

# proof/verify_test.go inclusionProofs. Upstream numbers leaves from 1 ({1, 8, ...} is the
# first leaf); here they are the 0-based indexes the ledger uses.
INCLUSION_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
]

# proof/verify_test.go consistencyProofs.
CONSISTENCY_PROOFS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


@pytest.fixture
def tree() -> MemoryTree:
    t = MemoryTree()
    t.extend(LEAVES)
    return t


# --- hashing, appending, roots ------------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == ROOTS[0]
    assert merkle.root_nodes(0) == []
    assert merkle.root_hash(0, {}) == EMPTY_ROOT
    assert MemoryTree().root() == EMPTY_ROOT


def test_leaf_and_node_hashes_are_domain_separated() -> None:
    assert merkle.leaf_hash(b"") == hashlib.sha256(b"\x00").digest() == NODE_HASHES[0][0]
    left, right = NODE_HASHES[0][0], NODE_HASHES[0][1]
    assert merkle.node_hash(left, right) == hashlib.sha256(b"\x01" + left + right).digest()
    assert merkle.node_hash(left, right) == NODE_HASHES[1][0]


def test_stored_nodes_are_exactly_the_published_perfect_nodes(tree: MemoryTree) -> None:
    expected = {
        (level, index): node
        for level, row in enumerate(NODE_HASHES)
        for index, node in enumerate(row)
    }
    assert dict(tree.nodes) == expected


@pytest.mark.parametrize("size", range(9))
def test_roots_one_leaf_at_a_time(size: int) -> None:
    t = MemoryTree()
    for leaf in LEAVES[:size]:
        t.append(leaf)
    assert t.size == size
    assert t.root() == ROOTS[size]


@pytest.mark.parametrize("size", range(9))
def test_root_at_every_earlier_size(tree: MemoryTree, size: int) -> None:
    assert tree.root_at(size) == ROOTS[size]


def test_roots_built_in_two_chunks() -> None:
    # testonly/tree_test.go TestBuildTreeBuildTwoChunks
    t = MemoryTree()
    t.extend(LEAVES[:3])
    assert t.root() == ROOTS[3]
    t.extend(LEAVES[3:8])
    assert t.root() == ROOTS[8]


def test_root_nodes_tile_the_tree() -> None:
    assert merkle.root_nodes(7) == [(2, 0), (1, 2), (0, 6)]
    assert merkle.root_nodes(8) == [(3, 0)]
    assert merkle.root_nodes(13) == [(3, 0), (2, 2), (0, 12)]


def test_append_returns_the_completed_nodes() -> None:
    stored = {
        (level, index): n for level, row in enumerate(NODE_HASHES) for index, n in enumerate(row)
    }
    fetched: list[tuple[int, int]] = []

    def get(level: int, index: int) -> bytes:
        fetched.append((level, index))
        return stored[(level, index)]

    new = merkle.append(7, NODE_HASHES[0][7], get)
    assert new == [
        (0, 7, NODE_HASHES[0][7]),
        (1, 3, NODE_HASHES[1][3]),
        (2, 1, NODE_HASHES[2][1]),
        (3, 0, NODE_HASHES[3][0]),
    ]
    assert fetched == [(0, 6), (1, 2), (2, 0)]
    assert merkle.append(4, NODE_HASHES[0][4], get) == [(0, 4, NODE_HASHES[0][4])]


def test_append_many_fetches_only_nodes_from_before_the_batch() -> None:
    t = MemoryTree()
    t.extend(LEAVES[:3])
    fetched: list[tuple[int, int]] = []

    def get(level: int, index: int) -> bytes:
        fetched.append((level, index))
        return t.nodes[(level, index)]

    new = merkle.append_many(3, [merkle.leaf_hash(x) for x in LEAVES[3:]], get)
    assert fetched == [(0, 2), (1, 0)]
    assert set(fetched) <= set(merkle.root_nodes(3))
    assert {(lvl, i) for lvl, i, _ in new} == {
        (0, 3), (0, 4), (0, 5), (0, 6), (0, 7), (1, 1), (1, 2), (1, 3), (2, 0), (2, 1), (3, 0)
    }  # fmt: skip
    for level, index, node in new:
        assert node == NODE_HASHES[level][index]


def test_append_rejects_a_hash_of_the_wrong_size() -> None:
    with pytest.raises(MerkleError):
        merkle.append(0, b"short", lambda level, index: b"")


def test_missing_node_is_an_error() -> None:
    with pytest.raises(MerkleError, match=r"\(0, 6\)"):
        merkle.append(7, NODE_HASHES[0][7], lambda level, index: {}[(level, index)])
    with pytest.raises(MerkleError, match=r"\(0, 6\)"):
        merkle.root_hash(7, {(2, 0): ROOTS[4], (1, 2): NODE_HASHES[1][2]})


# --- published proofs ----------------------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_published_inclusion_proofs(
    tree: MemoryTree, index: int, size: int, proof: list[bytes]
) -> None:
    assert tree.inclusion_proof(index, size) == proof
    leaf = merkle.leaf_hash(LEAVES[index])
    assert merkle.root_from_inclusion(leaf, index, size, proof) == ROOTS[size]
    merkle.verify_inclusion(leaf, index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY_PROOFS)
def test_published_consistency_proofs(
    tree: MemoryTree, first: int, second: int, proof: list[bytes]
) -> None:
    assert tree.consistency_proof(first, second) == proof
    merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


# proof/proof_test.go TestInclusion: (size, index) -> the stored nodes the proof is made of.
# Upstream lists them in its own order and marks which to rehash; the set is what must agree.
@pytest.mark.parametrize(
    ("size", "index", "nodes"),
    [
        (1, 0, set()),
        (2, 0, {(0, 1)}),
        (2, 1, {(0, 0)}),
        (3, 1, {(0, 0), (0, 2)}),
        (7, 0, {(0, 1), (1, 1), (0, 6), (1, 2)}),
        (7, 1, {(0, 0), (1, 1), (0, 6), (1, 2)}),
        (7, 2, {(0, 3), (1, 0), (0, 6), (1, 2)}),
        (7, 3, {(0, 2), (1, 0), (0, 6), (1, 2)}),
        (7, 4, {(0, 5), (0, 6), (2, 0)}),
        (7, 5, {(0, 4), (0, 6), (2, 0)}),
        (7, 6, {(1, 2), (2, 0)}),
        (4, 2, {(0, 3), (1, 0)}),
        (5, 3, {(0, 2), (1, 0), (0, 4)}),
        (6, 3, {(0, 2), (1, 0), (1, 2)}),
        (6, 4, {(0, 5), (2, 0)}),
        (15, 10, {(0, 11), (1, 4), (0, 14), (1, 6), (3, 0)}),
        (31, 24, {(0, 25), (1, 13), (0, 30), (1, 14), (3, 2), (4, 0)}),
        (95, 81, {(0, 80), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
    ],
)
def test_inclusion_proof_nodes(size: int, index: int, nodes: set[tuple[int, int]]) -> None:
    got = merkle.inclusion_proof_nodes(index, size)
    assert len(got) == len(set(got))
    assert set(got) == nodes


@pytest.mark.parametrize(("size", "index"), [(0, 0), (0, 1), (1, 2), (0, 3), (7, 8), (3, -1)])
def test_inclusion_proof_nodes_rejects_bad_arguments(size: int, index: int) -> None:
    with pytest.raises(MerkleError):
        merkle.inclusion_proof_nodes(index, size)


# proof/proof_test.go TestConsistency
@pytest.mark.parametrize(
    ("first", "second", "nodes"),
    [
        (1, 2, {(0, 1)}),
        (1, 4, {(0, 1), (1, 1)}),
        (1, 6, {(0, 1), (1, 1), (1, 2)}),
        (2, 3, {(0, 2)}),
        (2, 8, {(1, 1), (2, 1)}),
        (3, 7, {(0, 2), (0, 3), (1, 0), (0, 6), (1, 2)}),
        (4, 7, {(0, 6), (1, 2)}),
        (5, 7, {(0, 4), (0, 5), (0, 6), (2, 0)}),
        (6, 7, {(1, 2), (0, 6), (2, 0)}),
        (7, 8, {(0, 6), (0, 7), (1, 2), (2, 0)}),
        (1, 1, set()),
        (2, 2, set()),
        (3, 3, set()),
        (4, 4, set()),
        (5, 5, set()),
        (7, 7, set()),
        (8, 8, set()),
        (2, 4, {(1, 1)}),
        (3, 5, {(0, 2), (0, 3), (1, 0), (0, 4)}),
        (3, 6, {(0, 2), (0, 3), (1, 0), (1, 2)}),
        (4, 6, {(1, 2)}),
        (1, 7, {(0, 1), (1, 1), (0, 6), (1, 2)}),
        (10, 15, {(1, 4), (1, 5), (0, 14), (1, 6), (3, 0)}),
        (24, 31, {(3, 2), (0, 30), (1, 14), (2, 6), (4, 0)}),
        (81, 95, {(0, 80), (0, 81), (1, 41), (2, 21), (0, 94), (1, 46), (2, 22), (4, 4), (6, 0)}),
    ],
)
def test_consistency_proof_nodes(first: int, second: int, nodes: set[tuple[int, int]]) -> None:
    got = merkle.consistency_proof_nodes(first, second)
    assert len(got) == len(set(got))
    assert set(got) == nodes


@pytest.mark.parametrize(("first", "second"), [(5, 0), (9, 8), (-1, 3)])
def test_consistency_proof_nodes_rejects_bad_arguments(first: int, second: int) -> None:
    with pytest.raises(MerkleError):
        merkle.consistency_proof_nodes(first, second)


def test_proofs_beyond_the_tree_are_refused(tree: MemoryTree) -> None:
    with pytest.raises(MerkleError):
        tree.inclusion_proof(0, 9)
    with pytest.raises(MerkleError):
        tree.consistency_proof(2, 9)
    with pytest.raises(MerkleError):
        tree.root_at(9)


# --- corruption probes (proof/verify_test.go corruptInclusionProof / corruptConsistencyProof) ----


def _flip(proof: Sequence[bytes], i: int, mask: int) -> list[bytes]:
    out = list(proof)
    out[i] = bytes([out[i][0] ^ mask]) + out[i][1:]
    return out


def _inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    probes = [
        ("index - 1", index - 1, size, root, leaf, proof),
        ("index + 1", index + 1, size, root, leaf, proof),
        ("index ^ 2", index ^ 2, size, root, leaf, proof),
        ("size * 2", index, size * 2, root, leaf, proof),
        ("size / 2", index, size // 2, root, leaf, proof),
        ("wrong leaf", index, size, root, b"WrongLeaf", proof),
        ("wrong 32-byte leaf", index, size, root, SOME_HASH, proof),
        ("empty root", index, size, EMPTY_ROOT, leaf, proof),
        ("random root", index, size, SOME_HASH, leaf, proof),
        ("trailing garbage", index, size, root, leaf, [*proof, b""]),
        ("trailing root", index, size, root, leaf, [*proof, root]),
        ("preceding garbage", index, size, root, leaf, [b"", *proof]),
        ("preceding root", index, size, root, leaf, [root, *proof]),
    ]
    for i in range(len(proof)):
        probes.append((f"proof[{i}] bit 3", index, size, root, leaf, _flip(proof, i, 8)))
        probes.append(
            (f"proof[{i}] duplicated", index, size, root, leaf, [*proof[: i + 1], *proof[i:]])
        )
    if proof:
        probes.append(("removed component", index, size, root, leaf, proof[:-1]))
    if len(proof) > 1:
        probes.append(
            ("inserted component", index, size, root, leaf, [proof[0], SOME_HASH, *proof[1:]])
        )
    return probes


def _consistency_probes(
    first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes]
) -> list[tuple[str, int, int, bytes, bytes, list[bytes]]]:
    probes = [
        ("first - 1", first - 1, second, root1, root2, proof),
        ("first + 1", first + 1, second, root1, root2, proof),
        ("first ^ 2", first ^ 2, second, root1, root2, proof),
        ("second * 2", first, second * 2, root1, root2, proof),
        ("second / 2", first, second // 2, root1, root2, proof),
        ("wrong root1", first, second, b"WrongRoot", root2, proof),
        ("wrong root2", first, second, root1, b"WrongRoot", proof),
        ("random root1", first, second, SOME_HASH, root2, proof),
        ("random root2", first, second, root1, SOME_HASH, proof),
        ("swapped roots", first, second, root2, root1, proof),
        ("empty proof", first, second, root1, root2, []),
        ("trailing garbage", first, second, root1, root2, [*proof, b""]),
        ("trailing root1", first, second, root1, root2, [*proof, root1]),
        ("trailing root2", first, second, root1, root2, [*proof, root2]),
        ("preceding garbage", first, second, root1, root2, [b"", *proof]),
        ("preceding root1", first, second, root1, root2, [root1, *proof]),
        ("preceding root2", first, second, root1, root2, [root2, *proof]),
        ("preceding proof[0]", first, second, root1, root2, [proof[0], *proof]),
        ("truncated proof", first, second, root1, root2, proof[:-1]),
    ]
    for i in range(len(proof)):
        probes.append((f"proof[{i}] bit 4", first, second, root1, root2, _flip(proof, i, 16)))
        probes.append(
            (f"proof[{i}] duplicated", first, second, root1, root2, [*proof[: i + 1], *proof[i:]])
        )
    return probes


def _accepted(check: Callable[[], None]) -> bool:
    try:
        check()
    except ProofError:
        return False
    return True


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_corrupted_inclusion_proofs_fail(index: int, size: int, proof: list[bytes]) -> None:
    leaf = merkle.leaf_hash(LEAVES[index])
    probes = _inclusion_probes(index, size, proof, ROOTS[size], leaf)
    wrong = [
        desc
        for desc, i, n, root, lf, pr in probes
        if _accepted(
            lambda i=i, n=n, root=root, lf=lf, pr=pr: merkle.verify_inclusion(lf, i, n, pr, root)
        )
    ]
    assert wrong == []


@pytest.mark.parametrize(("first", "second", "proof"), [p for p in CONSISTENCY_PROOFS if p[2]])
def test_corrupted_consistency_proofs_fail(first: int, second: int, proof: list[bytes]) -> None:
    probes = _consistency_probes(first, second, ROOTS[first], ROOTS[second], proof)
    wrong = [
        desc
        for desc, m, n, r1, r2, pr in probes
        if _accepted(
            lambda m=m, n=n, r1=r1, r2=r2, pr=pr: merkle.verify_consistency(m, n, r1, r2, pr)
        )
    ]
    assert wrong == []


# --- edge cases (proof/verify_test.go TestVerifyInclusion*, TestVerifyConsistency) ---------------


def test_single_entry_inclusion() -> None:
    leaf = merkle.leaf_hash(b"data")
    merkle.verify_inclusion(leaf, 0, 1, [], leaf)
    for root, lf in [(leaf, b""), (b"", leaf), (b"", b"")]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(lf, 0, 1, [], root)


@pytest.mark.parametrize(("index", "size"), [(0, 0), (0, 1), (1, 0), (2, 1)])
def test_inclusion_in_empty_or_mismatched_trees_fails(index: int, size: int) -> None:
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(ProofError):
            merkle.verify_inclusion(leaf, index, size, [], root)


ROOT_A = hashlib.sha256(b"don't care 1").digest()
ROOT_B = hashlib.sha256(b"don't care 2").digest()


# Upstream's table, with 32-byte stand-ins for its "don't care" roots. Two upstream cases are
# deliberately stricter here: a tree of size 0 must have the empty root (upstream ignores root1).
@pytest.mark.parametrize(
    ("first", "second", "root1", "root2", "proof", "ok"),
    [
        (0, 0, ROOT_A, ROOT_B, [], False),
        (1, 1, ROOT_A, ROOT_B, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, EMPTY_ROOT, ROOT_B, [], True),
        (1, 1, ROOT_B, ROOT_B, [], True),
        (1, 0, ROOT_A, ROOT_B, [], False),
        (2, 1, ROOT_A, ROOT_B, [], False),
        (1, 2, ROOT_A, ROOT_B, [], False),
        (0, 0, EMPTY_ROOT, ROOT_B, [], False),
        (1, 1, EMPTY_ROOT, ROOT_B, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        # Stricter than upstream, which accepts these:
        (0, 0, ROOT_A, ROOT_A, [], False),
        (0, 1, ROOT_A, ROOT_B, [], False),
    ],
)
def test_consistency_edge_cases(
    first: int, second: int, root1: bytes, root2: bytes, proof: list[bytes], ok: bool
) -> None:
    assert _accepted(lambda: merkle.verify_consistency(first, second, root1, root2, proof)) is ok


def test_every_proof_of_the_8_leaf_tree_verifies(tree: MemoryTree) -> None:
    for size in range(1, 9):
        for index in range(size):
            leaf = merkle.leaf_hash(LEAVES[index])
            merkle.verify_inclusion(
                leaf, index, size, tree.inclusion_proof(index, size), ROOTS[size]
            )
    for first in range(9):
        for second in range(first, 9):
            proof = tree.consistency_proof(first, second)
            merkle.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)
