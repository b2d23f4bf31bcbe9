"""RFC 6962 / RFC 9162 Merkle tree hashing, proof building and proof verification.

Standard library only, so that the offline verifier can carry it.

The tree over leaves ``D[0:n]`` is the one of RFC 9162 §2.1.1: a leaf hashes as
``SHA-256(0x00 || leaf)``, an inner node as ``SHA-256(0x01 || left || right)``, the empty
tree as ``SHA-256("")``, and a range splits at the largest power of two below its size.

Every subtree that appears in such a tree starts at a multiple of a power of two at least
as large as itself, so it is a run of *perfect* subtrees (sizes the binary digits of its
length, largest first). A store therefore keeps only perfect nodes, addressed by
``NodeId(level, index)`` (covering leaves ``index·2^level`` to ``(index+1)·2^level``), and a
proof needs O(log n) of them: :func:`inclusion_ranges` and :func:`consistency_ranges` say
which subtrees, :func:`nodes_for` which stored nodes make them, and :func:`assemble` folds
those into the proof.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from sprava.errors import IntegrityError

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(IntegrityError):
    """A proof, root or tree size does not verify."""

    default_code = "proof-invalid"


@dataclass(frozen=True, slots=True)
class NodeId:
    """A perfect subtree: ``2**level`` leaves starting at leaf ``index << level``."""

    level: int
    index: int


def leaf_hash(leaf: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(size: int) -> int:
    """The largest power of two strictly below ``size`` (``size`` ≥ 2)."""
    return 1 << ((size - 1).bit_length() - 1)


def range_nodes(lo: int, hi: int) -> list[NodeId]:
    """The perfect subtrees that make up the RFC 6962 subtree over leaves ``[lo, hi)``.

    ``lo`` must be aligned as it is for every subtree of an RFC 6962 tree.
    """
    nodes: list[NodeId] = []
    while lo < hi:
        level = (hi - lo).bit_length() - 1
        nodes.append(NodeId(level, lo >> level))
        lo += 1 << level
    return nodes


def fold(hashes: Sequence[bytes]) -> bytes:
    """Hash a run of perfect-subtree roots (left to right) into the root of their range."""
    if not hashes:
        return EMPTY_ROOT
    acc = hashes[-1]
    for h in reversed(hashes[:-1]):
        acc = node_hash(h, acc)
    return acc


def _inclusion_ranges(index: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.3.1 PATH(m, D[lo:hi]) as leaf ranges, bottom-up."""
    out: list[tuple[int, int]] = []
    while hi - lo > 1:
        k = _split(hi - lo)
        if index < lo + k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo = lo + k
    out.reverse()
    return out


def _consistency_ranges(m: int, lo: int, hi: int) -> list[tuple[int, int]]:
    """RFC 9162 §2.1.4.1 SUBPROOF(m, D[lo:hi], true) as leaf ranges, in proof order."""
    out: list[tuple[int, int]] = []
    complete = True
    while True:
        n = hi - lo
        if m == n:
            if not complete:
                out.append((lo, hi))
            break
        k = _split(n)
        if m <= k:
            out.append((lo + k, hi))
            hi = lo + k
        else:
            out.append((lo, lo + k))
            lo, m, complete = lo + k, m - k, False
    out.reverse()
    return out


def _check_sizes(index: int, size: int) -> None:
    if size < 0 or index < 0:
        raise ProofError("tree sizes and indices are never negative", code="bad-size")
    if index >= size:
        raise ProofError(
            f"leaf {index} is not in a tree of {size} leaves", code="index-out-of-range"
        )


def inclusion_ranges(index: int, size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose subtree hashes form the inclusion proof of ``index`` in ``size``."""
    _check_sizes(index, size)
    return _inclusion_ranges(index, 0, size)


def consistency_ranges(old_size: int, new_size: int) -> list[tuple[int, int]]:
    """Leaf ranges whose subtree hashes form the consistency proof ``old_size → new_size``."""
    if old_size < 0 or new_size < old_size:
        raise ProofError(
            f"no consistency proof from size {old_size} to size {new_size}", code="bad-size"
        )
    if old_size == 0 or old_size == new_size:
        return []
    return _consistency_ranges(old_size, 0, new_size)


def nodes_for(ranges: Iterable[tuple[int, int]]) -> list[NodeId]:
    """Every perfect node needed to hash the given ranges, without repeats."""
    seen: dict[NodeId, None] = {}
    for lo, hi in ranges:
        for node in range_nodes(lo, hi):
            seen[node] = None
    return list(seen)


def assemble(ranges: Sequence[tuple[int, int]], nodes: Mapping[NodeId, bytes]) -> list[bytes]:
    """Fold fetched perfect nodes into the hashes of ``ranges``, in order."""
    return [fold([nodes[n] for n in range_nodes(lo, hi)]) for lo, hi in ranges]


class CompactRange:
    """The perfect-subtree roots of leaves ``[0, size)``: enough to append and to hash.

    Appending returns the perfect nodes it completes, which is what a node store keeps.
    Memory is O(log n) whatever the tree size.
    """

    __slots__ = ("_stack", "size")

    def __init__(self, size: int = 0, roots: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError("a tree size is never negative")
        expected = range_nodes(0, size)
        if len(roots) != len(expected):
            raise ValueError(f"a tree of {size} leaves has {len(expected)} perfect roots")
        self.size = size
        self._stack: list[tuple[int, bytes]] = [
            (node.level, h) for node, h in zip(expected, roots, strict=True)
        ]

    def append(self, hashed_leaf: bytes) -> list[tuple[NodeId, bytes]]:
        index = self.size
        created = [(NodeId(0, index), hashed_leaf)]
        level, acc = 0, hashed_leaf
        stack = self._stack
        while stack and stack[-1][0] == level:
            _, left = stack.pop()
            acc = node_hash(left, acc)
            level += 1
            created.append((NodeId(level, index >> level), acc))
        stack.append((level, acc))
        self.size = index + 1
        return created

    def root(self) -> bytes:
        return fold([h for _, h in self._stack])


def root_of(leaves: Iterable[bytes]) -> bytes:
    """The tree head over raw leaf data, computed in one streaming pass."""
    compact = CompactRange()
    for leaf in leaves:
        compact.append(leaf_hash(leaf))
    return compact.root()


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} has {len(value)} bytes, not {HASH_SIZE}", code="bad-hash")


def root_from_inclusion(
    index: int, size: int, hashed_leaf: bytes, proof: Sequence[bytes]
) -> bytes:
    """RFC 9162 §2.1.3.2: the root that ``proof`` implies for the leaf; raises ProofError."""
    _check_sizes(index, size)
    _check_hash(hashed_leaf, "the leaf hash")
    fn, sn, r = index, size - 1, hashed_leaf
    for p in proof:
        _check_hash(p, "a proof hash")
        if sn == 0:
            raise ProofError("the inclusion proof is longer than the tree", code="proof-too-long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the inclusion proof is shorter than the tree", code="proof-too-short")
    return r


def verify_inclusion(
    index: int, size: int, hashed_leaf: bytes, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf ``index`` with hash ``hashed_leaf`` is in the tree ``(size, root)``.

    Returns None; raises ProofError naming what does not hold.
    """
    _check_hash(root, "the root")
    if root_from_inclusion(index, size, hashed_leaf, proof) != root:
        raise ProofError(
            f"inclusion proof of leaf {index} does not lead to the root of size {size}",
            code="inclusion-mismatch",
        )


def verify_consistency(
    old_size: int, new_size: int, proof: Sequence[bytes], old_root: bytes, new_root: bytes
) -> None:
    """RFC 9162 §2.1.4.2: check that tree ``(new_size, new_root)`` extends the older one.

    Equal sizes need an empty proof and equal roots; a proof from the empty tree is
    meaningless and refused. Returns None; raises ProofError.
    """
    if old_size < 1 or new_size < old_size:
        raise ProofError(
            f"no consistency proof exists from size {old_size} to size {new_size}",
            code="bad-size",
        )
    if old_size == new_size:
        if proof:
            raise ProofError("equal sizes need an empty proof", code="proof-too-long")
        if old_root != new_root:
            raise ProofError("two roots of the same size differ: the log forked", code="fork")
        return
    _check_hash(old_root, "the old root")
    _check_hash(new_root, "the new root")
    for p in proof:
        _check_hash(p, "a proof hash")
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    if not path:
        raise ProofError("the consistency proof is empty", code="proof-too-short")
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("the consistency proof is too long", code="proof-too-long")
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("the consistency proof is too short", code="proof-too-short")
    if fr != old_root:
        raise ProofError(
            f"the consistency proof does not lead to the root of size {old_size}",
            code="consistency-mismatch",
        )
    if sr != new_root:
        raise ProofError(
            f"the consistency proof does not lead to the root of size {new_size}",
            code="consistency-mismatch",
        )
