"""Property tests for the Merkle tree: built proofs verify, tampered proofs never do.

Proofs are built the way a log serves them (a node store filled from CompactRange.append,
then assemble()) and checked against roots from root_of() on prefixes, and against an
independent transcription of the RFC 9162 §2.1 recursive definitions (MTH, PATH, PROOF).

Mutation tests use distinct leaves. With repeated leaves some mutations are honestly
still valid proofs (in a tree of identical leaves the proof for leaf 0 *is* the proof for
leaf 1), so only distinct leaves make "every mutation must fail" a sound claim.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprava.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    ProofError,
    assemble,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    range_nodes,
    root_of,
    verify_consistency,
    verify_inclusion,
)

MAX_SIZE = 300
SLACK = 8  # leaves beyond the proven tree, so that a claimed size may also grow
PROPERTY = settings(max_examples=25, deadline=None, database=None)
FAST = settings(max_examples=150, deadline=None, database=None)
MUTATION_CODES = {
    "bad-size",
    "index-out-of-range",
    "proof-too-long",
    "proof-too-short",
    "inclusion-mismatch",
    "consistency-mismatch",
}


@dataclass(frozen=True)
class Tree:
    leaves: list[bytes]
    store: dict[NodeId, bytes]
    _roots: dict[int, bytes] = field(default_factory=dict)

    def root(self, size: int) -> bytes:
        """root_of() on the prefix of ``size`` leaves (computed once per size)."""
        if size not in self._roots:
            self._roots[size] = root_of(self.leaves[:size])
        return self._roots[size]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return assemble(inclusion_ranges(index, size), self.store)

    def consistency(self, old: int, new: int) -> list[bytes]:
        return assemble(consistency_ranges(old, new), self.store)


def _build(leaves: list[bytes]) -> Tree:
    store: dict[NodeId, bytes] = {}
    compact = CompactRange()
    for leaf in leaves:
        store.update(compact.append(leaf_hash(leaf)))
    return Tree(leaves, store)


def _distinct_leaves(size: int, salt: bytes) -> list[bytes]:
    return [salt + index.to_bytes(2, "big") for index in range(size)]


# --- an independent RFC 9162 §2.1 oracle ------------------------------------------------------


def _oracle(leaves: list[bytes]) -> tuple[
    Callable[[int, int], bytes],
    Callable[[int, int], list[bytes]],
    Callable[[int, int], list[bytes]],
]:
    """MTH(D[lo:hi]), PATH(m, D[0:n]) and PROOF(m, D[0:n]), straight from the RFC text."""

    def split(n: int) -> int:
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    @cache
    def mth(lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:
            return hashlib.sha256(b"").digest()
        if n == 1:
            return hashlib.sha256(b"\x00" + leaves[lo]).digest()
        k = split(n)
        return hashlib.sha256(b"\x01" + mth(lo, lo + k) + mth(lo + k, hi)).digest()

    def path(m: int, lo: int, hi: int) -> list[bytes]:
        n = hi - lo
        if n == 1:
            return []
        k = split(n)
        if m < k:
            return [*path(m, lo, lo + k), mth(lo + k, hi)]
        return [*path(m - k, lo + k, hi), mth(lo, lo + k)]

    def subproof(m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        n = hi - lo
        if m == n:
            return [] if complete else [mth(lo, hi)]
        k = split(n)
        if m <= k:
            return [*subproof(m, lo, lo + k, complete), mth(lo + k, hi)]
        return [*subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]

    return mth, lambda m, n: path(m, 0, n), lambda m, n: subproof(m, 0, n, True)


# --- strategies -------------------------------------------------------------------------------


sizes = st.integers(min_value=1, max_value=MAX_SIZE)
salts = st.binary(max_size=6)


@st.composite
def inclusion_cases(draw: st.DrawFn) -> tuple[Tree, int, int]:
    """A tree of distinct leaves, a proven size, and a leaf index in it."""
    size = draw(sizes)
    tree = _build(_distinct_leaves(size + SLACK, draw(salts)))
    return tree, draw(st.integers(0, size - 1)), size


@st.composite
def consistency_cases(draw: st.DrawFn) -> tuple[Tree, int, int]:
    """A tree of distinct leaves and two sizes 1 ≤ old < new (the proof is never empty)."""
    new = draw(st.integers(min_value=2, max_value=MAX_SIZE))
    tree = _build(_distinct_leaves(new + SLACK, draw(salts)))
    return tree, draw(st.integers(1, new - 1)), new


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


# --- built proofs verify ----------------------------------------------------------------------


@PROPERTY
@given(size=sizes, salt=salts)
def test_every_proof_verifies_against_prefix_roots(size: int, salt: bytes) -> None:
    tree = _build(_distinct_leaves(size, salt))
    mth, path, proof = _oracle(tree.leaves)
    assert tree.root(size) == mth(0, size)
    for index in range(size):
        built = tree.inclusion(index, size)
        assert built == path(index, size)
        verify_inclusion(index, size, leaf_hash(tree.leaves[index]), built, tree.root(size))
    for old in range(1, size + 1):
        built = tree.consistency(old, size)
        assert built == proof(old, size)
        verify_consistency(old, size, built, tree.root(old), tree.root(size))


@FAST
@given(
    leaves=st.lists(st.binary(max_size=2), min_size=1, max_size=40),
    data=st.data(),
)
def test_proofs_verify_with_repeated_leaves(leaves: list[bytes], data: st.DataObject) -> None:
    tree = _build(leaves)
    mth, path, proof = _oracle(leaves)
    new = data.draw(st.integers(1, len(leaves)), label="new")
    assert tree.root(new) == mth(0, new)
    for index in range(new):
        built = tree.inclusion(index, new)
        assert built == path(index, new)
        verify_inclusion(index, new, leaf_hash(leaves[index]), built, tree.root(new))
    for old in range(1, new + 1):
        built = tree.consistency(old, new)
        assert built == proof(old, new)
        verify_consistency(old, new, built, tree.root(old), tree.root(new))


@FAST
@given(leaves=st.lists(st.binary(max_size=4), max_size=70))
def test_root_of_agrees_with_compact_range_and_oracle(leaves: list[bytes]) -> None:
    mth, _, _ = _oracle(leaves)
    compact = CompactRange()
    assert compact.root() == EMPTY_ROOT
    for size, leaf in enumerate(leaves, start=1):
        compact.append(leaf_hash(leaf))
        assert compact.size == size
        assert compact.root() == mth(0, size)
    assert root_of(leaves) == mth(0, len(leaves))


# --- tampered inclusion proofs ----------------------------------------------------------------


def _refused_inclusion(index: int, size: int, leaf: bytes, proof: list[bytes], root: bytes) -> str:
    with pytest.raises(ProofError) as excinfo:
        verify_inclusion(index, size, leaf, proof, root)
    return excinfo.value.code


@PROPERTY
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_with_a_flipped_bit_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, index, size = case
    proof = tree.inclusion(index, size)
    if not proof:  # a one-leaf tree: flip the leaf hash instead
        leaf = _flip(leaf_hash(tree.leaves[index]), data.draw(st.integers(0, 255), label="bit"))
        code = _refused_inclusion(index, size, leaf, proof, tree.root(size))
        assert code == "inclusion-mismatch"
        return
    at = data.draw(st.integers(0, len(proof) - 1), label="element")
    proof[at] = _flip(proof[at], data.draw(st.integers(0, 255), label="bit"))
    code = _refused_inclusion(index, size, leaf_hash(tree.leaves[index]), proof, tree.root(size))
    assert code == "inclusion-mismatch"


@PROPERTY
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_at_another_index_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, index, size = case
    other = data.draw(st.integers(0, size + SLACK).filter(lambda j: j != index), label="index")
    proof = tree.inclusion(index, size)
    code = _refused_inclusion(other, size, leaf_hash(tree.leaves[index]), proof, tree.root(size))
    assert code in MUTATION_CODES


@PROPERTY
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_in_another_size_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, index, size = case
    other = data.draw(st.integers(0, size + SLACK).filter(lambda n: n != size), label="size")
    proof = tree.inclusion(index, size)
    # Always against the genuine root of the claimed size: the proof must still fail.
    code = _refused_inclusion(index, other, leaf_hash(tree.leaves[index]), proof, tree.root(other))
    assert code in MUTATION_CODES


@PROPERTY
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_with_a_dropped_element_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, index, size = case
    proof = tree.inclusion(index, size)
    if not proof:
        return  # nothing to drop in a one-leaf tree
    del proof[data.draw(st.integers(0, len(proof) - 1), label="element")]
    code = _refused_inclusion(index, size, leaf_hash(tree.leaves[index]), proof, tree.root(size))
    assert code == "proof-too-short"


@PROPERTY
@given(case=inclusion_cases(), data=st.data())
def test_inclusion_with_an_added_element_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, index, size = case
    proof = tree.inclusion(index, size)
    extra = data.draw(
        st.sampled_from([*proof, tree.root(size)]) | st.binary(min_size=32, max_size=32),
        label="extra",
    )
    proof.insert(data.draw(st.integers(0, len(proof)), label="position"), extra)
    code = _refused_inclusion(index, size, leaf_hash(tree.leaves[index]), proof, tree.root(size))
    assert code == "proof-too-long"


# --- tampered consistency proofs --------------------------------------------------------------


def _refused_consistency(
    old: int, new: int, proof: list[bytes], old_root: bytes, new_root: bytes
) -> str:
    with pytest.raises(ProofError) as excinfo:
        verify_consistency(old, new, proof, old_root, new_root)
    return excinfo.value.code


@PROPERTY
@given(case=consistency_cases(), data=st.data())
def test_consistency_with_a_flipped_bit_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, old, new = case
    proof = tree.consistency(old, new)
    at = data.draw(st.integers(0, len(proof) - 1), label="element")
    proof[at] = _flip(proof[at], data.draw(st.integers(0, 255), label="bit"))
    code = _refused_consistency(old, new, proof, tree.root(old), tree.root(new))
    assert code == "consistency-mismatch"


@PROPERTY
@given(case=consistency_cases(), data=st.data())
def test_consistency_with_a_flipped_root_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, old, new = case
    proof = tree.consistency(old, new)
    bit = data.draw(st.integers(0, 255), label="bit")
    if data.draw(st.booleans(), label="flip the old root"):
        code = _refused_consistency(old, new, proof, _flip(tree.root(old), bit), tree.root(new))
    else:
        code = _refused_consistency(old, new, proof, tree.root(old), _flip(tree.root(new), bit))
    assert code == "consistency-mismatch"


@PROPERTY
@given(case=consistency_cases(), data=st.data())
def test_consistency_from_another_old_size_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, old, new = case
    other = data.draw(st.integers(0, new + SLACK).filter(lambda m: m != old), label="old")
    proof = tree.consistency(old, new)
    code = _refused_consistency(other, new, proof, tree.root(other), tree.root(new))
    assert code in MUTATION_CODES


@PROPERTY
@given(case=consistency_cases(), data=st.data())
def test_consistency_to_another_new_size_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, old, new = case
    other = data.draw(st.integers(0, new + SLACK).filter(lambda n: n != new), label="new")
    proof = tree.consistency(old, new)
    code = _refused_consistency(old, other, proof, tree.root(old), tree.root(other))
    assert code in MUTATION_CODES


@PROPERTY
@given(case=consistency_cases(), data=st.data())
def test_consistency_with_a_dropped_element_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, old, new = case
    proof = tree.consistency(old, new)
    del proof[data.draw(st.integers(0, len(proof) - 1), label="element")]
    code = _refused_consistency(old, new, proof, tree.root(old), tree.root(new))
    assert code == "proof-too-short"


@PROPERTY
@given(case=consistency_cases(), data=st.data())
def test_consistency_with_an_added_element_fails(
    case: tuple[Tree, int, int], data: st.DataObject
) -> None:
    tree, old, new = case
    proof = tree.consistency(old, new)
    extra = data.draw(
        st.sampled_from([*proof, tree.root(old), tree.root(new)])
        | st.binary(min_size=32, max_size=32),
        label="extra",
    )
    proof.insert(data.draw(st.integers(0, len(proof)), label="position"), extra)
    code = _refused_consistency(old, new, proof, tree.root(old), tree.root(new))
    assert code == "proof-too-long"


@FAST
@given(size=sizes, salt=salts, data=st.data())
def test_equal_sizes_need_an_empty_proof_and_equal_roots(
    size: int, salt: bytes, data: st.DataObject
) -> None:
    root = root_of(_distinct_leaves(size, salt))
    verify_consistency(size, size, [], root, root)
    extra = data.draw(st.binary(min_size=32, max_size=32), label="extra")
    assert _refused_consistency(size, size, [extra], root, root) == "proof-too-long"
    forked = _flip(root, data.draw(st.integers(0, 255), label="bit"))
    assert _refused_consistency(size, size, [], root, forked) == "fork"


# --- CompactRange restored from stored nodes --------------------------------------------------


@PROPERTY
@given(size=sizes, salt=salts, data=st.data())
def test_restored_compact_range_continues_like_a_fresh_one(
    size: int, salt: bytes, data: st.DataObject
) -> None:
    leaves = _distinct_leaves(size, salt)
    tree = _build(leaves)
    cut = data.draw(st.integers(0, size), label="restored at")
    restored = CompactRange(cut, [tree.store[node] for node in range_nodes(0, cut)])
    fresh = CompactRange()
    for leaf in leaves[:cut]:
        fresh.append(leaf_hash(leaf))
    assert restored.size == fresh.size == cut
    assert restored.root() == fresh.root() == tree.root(cut)
    for grown, leaf in enumerate(leaves[cut:], start=cut + 1):
        assert restored.append(leaf_hash(leaf)) == fresh.append(leaf_hash(leaf))
        assert restored.root() == fresh.root() == tree.root(grown)
    assert restored.size == size


@FAST
@given(size=st.integers(0, 2000), salt=salts)
def test_compact_range_appends_create_each_perfect_node_once(size: int, salt: bytes) -> None:
    compact = CompactRange()
    created: list[NodeId] = []
    for index in range(size):
        nodes = [node for node, _ in compact.append(leaf_hash(salt + index.to_bytes(2, "big")))]
        # the leaf node, plus one merged node per trailing one bit of `index`
        assert len(nodes) == ((index + 1) & -(index + 1)).bit_length()
        created.extend(nodes)
    assert len(set(created)) == len(created)
    assert all(((node.index + 1) << node.level) <= size for node in created)


# --- range_nodes ------------------------------------------------------------------------------


@FAST
@given(level=st.integers(0, 40), start=st.integers(0, 2**20), data=st.data())
def test_range_nodes_decompose_an_aligned_range(
    level: int, start: int, data: st.DataObject
) -> None:
    lo = start << level
    hi = lo + data.draw(st.integers(0, 1 << level), label="width")
    nodes = range_nodes(lo, hi)
    assert sum(1 << node.level for node in nodes) == hi - lo
    cursor = lo
    for node in nodes:
        assert node.index << node.level == cursor  # contiguous, each node aligned
        cursor += 1 << node.level
    assert cursor == hi
    levels = [node.level for node in nodes]
    assert levels == sorted(set(levels), reverse=True)  # binary digits, largest first
    assert len(nodes) == (hi - lo).bit_count()


@FAST
@given(size=sizes, data=st.data())
def test_proof_ranges_decompose_exactly(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1), label="index")
    ranges = inclusion_ranges(index, size)
    covered = sorted([*ranges, (index, index + 1)])
    assert covered[0][0] == 0
    assert covered[-1][1] == size
    assert all(a[1] == b[0] for a, b in pairwise(covered))
    old = data.draw(st.integers(0, size), label="old")
    for lo, hi in [*ranges, *consistency_ranges(old, size)]:
        assert sum(1 << node.level for node in range_nodes(lo, hi)) == hi - lo
