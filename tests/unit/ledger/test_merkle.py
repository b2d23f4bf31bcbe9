"""RFC 6962 / 9162 Merkle hashing against the published transparency-dev/merkle vectors.

The vectors live outside the project, in ``../shared/samples/transparency-dev-merkle``
(github.com/transparency-dev/merkle, see SOURCE.txt there). They are read in place and
never copied; if the folder is missing every test here fails, loudly, rather than skip.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest

from sprava.ledger.merkle import (
    EMPTY_ROOT,
    CompactRange,
    NodeId,
    ProofError,
    assemble,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    nodes_for,
    root_of,
    verify_consistency,
    verify_inclusion,
)

SAMPLES = Path(__file__).resolve().parents[3].parent / "shared/samples/transparency-dev-merkle"
TESTDATA = SAMPLES / "testdata"
VECTORS = SAMPLES / "rfc6962_vectors.json"
PROBE_COUNT = 196  # 98 inclusion + 98 consistency probes, per SOURCE.txt
KEBAB = re.compile(r"[a-z]+(-[a-z]+)*")
PROOF_CODES = {
    "bad-size",
    "bad-hash",
    "index-out-of-range",
    "proof-too-long",
    "proof-too-short",
    "inclusion-mismatch",
    "consistency-mismatch",
    "fork",
}
# The happy-path probes built over the vector leaves; (c) must meet every one of them.
VECTOR_HAPPY_PATHS = {
    *(f"inclusion/{d}/happy-path.json" for d in range(5)),
    *(f"consistency/{d}/happy-path.json" for d in range(5)),
}


def _require_samples() -> None:
    if not VECTORS.is_file() or not TESTDATA.is_dir():
        pytest.fail(
            f"the transparency-dev/merkle sample vectors are missing: expected {VECTORS} and "
            f"{TESTDATA}/ (they are read in place from ../shared/samples, never copied)",
            pytrace=False,
        )


def _probe_paths() -> list[Path]:
    return sorted(TESTDATA.rglob("*.json")) if TESTDATA.is_dir() else []


def _probe_params() -> list[Any]:
    params = [pytest.param(p, id=p.relative_to(TESTDATA).as_posix()) for p in _probe_paths()]
    # An empty parameter set would make pytest *skip*; a missing folder must fail instead.
    return params or [pytest.param(None, id="samples-missing")]


def _b64(value: str | None) -> bytes:
    return base64.b64decode(value, validate=True) if value else b""


def _load_probe(path: Path | None) -> dict[str, Any]:
    _require_samples()
    assert path is not None
    probe: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return probe


def _run_probe(probe: dict[str, Any]) -> None:
    proof = [_b64(p) for p in probe["proof"] or []]
    if "leafIdx" in probe:
        return verify_inclusion(
            probe["leafIdx"], probe["treeSize"], _b64(probe["leafHash"]), proof,
            _b64(probe["root"]),
        )
    return verify_consistency(
        probe["size1"], probe["size2"], proof, _b64(probe["root1"]), _b64(probe["root2"])
    )


@pytest.fixture(scope="module")
def vectors() -> dict[str, Any]:
    _require_samples()
    data: dict[str, Any] = json.loads(VECTORS.read_text(encoding="utf-8"))
    return data


@pytest.fixture(scope="module")
def leaves(vectors: dict[str, Any]) -> list[bytes]:
    return [bytes.fromhex(h) for h in vectors["leaf_inputs_hex"]]


@pytest.fixture(scope="module")
def roots(vectors: dict[str, Any]) -> dict[int, bytes]:
    return {int(k): bytes.fromhex(v) for k, v in vectors["root_hash_by_tree_size"].items()}


@pytest.fixture(scope="module")
def store(leaves: list[bytes]) -> dict[NodeId, bytes]:
    """Every perfect node of the 8-leaf tree, as CompactRange.append hands them out."""
    nodes: dict[NodeId, bytes] = {}
    compact = CompactRange()
    for leaf in leaves:
        for node, value in compact.append(leaf_hash(leaf)):
            assert node not in nodes, f"{node} created twice"
            nodes[node] = value
    return nodes


@pytest.fixture(scope="module")
def happy_probes() -> dict[str, dict[str, Any]]:
    _require_samples()
    probes = {
        p.relative_to(TESTDATA).as_posix(): json.loads(p.read_text(encoding="utf-8"))
        for p in _probe_paths()
    }
    return {name: probe for name, probe in probes.items() if not probe["wantErr"]}


# --- (a) rfc6962_vectors.json ---------------------------------------------------------------


def test_vector_file_shape(vectors: dict[str, Any]) -> None:
    assert len(vectors["leaf_inputs_hex"]) == 8
    assert [len(level) for level in vectors["node_hashes_by_level"]] == [8, 4, 2, 1]
    assert sorted(int(k) for k in vectors["root_hash_by_tree_size"]) == list(range(9))


def test_leaf_hashes_are_level_zero(vectors: dict[str, Any], leaves: list[bytes]) -> None:
    assert [leaf_hash(leaf).hex() for leaf in leaves] == vectors["node_hashes_by_level"][0]


@pytest.mark.parametrize("level", [1, 2, 3], ids=["level-1", "level-2", "level-3"])
def test_inner_nodes_hash_their_children(vectors: dict[str, Any], level: int) -> None:
    below = [bytes.fromhex(h) for h in vectors["node_hashes_by_level"][level - 1]]
    computed = [node_hash(below[2 * i], below[2 * i + 1]).hex() for i in range(len(below) // 2)]
    assert computed == vectors["node_hashes_by_level"][level]


def test_compact_range_creates_every_published_node(
    vectors: dict[str, Any], store: dict[NodeId, bytes]
) -> None:
    published = {
        NodeId(level, index): bytes.fromhex(h)
        for level, row in enumerate(vectors["node_hashes_by_level"])
        for index, h in enumerate(row)
    }
    assert store == published


@pytest.mark.parametrize("size", range(9), ids=[f"size-{n}" for n in range(9)])
def test_root_of_matches_published_root(
    leaves: list[bytes], roots: dict[int, bytes], size: int
) -> None:
    assert root_of(leaves[:size]) == roots[size]


@pytest.mark.parametrize("size", range(9), ids=[f"size-{n}" for n in range(9)])
def test_compact_range_matches_published_root(
    leaves: list[bytes], roots: dict[int, bytes], size: int
) -> None:
    compact = CompactRange()
    for leaf in leaves[:size]:
        compact.append(leaf_hash(leaf))
    assert compact.size == size
    assert compact.root() == roots[size]


def test_empty_root_is_sha256_of_nothing(roots: dict[int, bytes]) -> None:
    assert roots[0] == EMPTY_ROOT
    assert root_of([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT


# --- (b) the 196 JSON probes ----------------------------------------------------------------


def test_probe_count() -> None:
    _require_samples()
    paths = _probe_paths()
    assert len(paths) == PROBE_COUNT
    assert sum(p.relative_to(TESTDATA).parts[0] == "inclusion" for p in paths) == 98
    assert sum(p.relative_to(TESTDATA).parts[0] == "consistency" for p in paths) == 98


@pytest.mark.parametrize("path", _probe_params())
def test_probe(path: Path | None) -> None:
    probe = _load_probe(path)
    if not probe["wantErr"]:
        assert _run_probe(probe) is None
        return
    with pytest.raises(ProofError) as excinfo:
        _run_probe(probe)
    assert excinfo.value.code in PROOF_CODES
    assert KEBAB.fullmatch(excinfo.value.code)
    assert excinfo.value.message


# --- (c) proofs built by this code ----------------------------------------------------------


@pytest.mark.parametrize("size", range(1, 9), ids=[f"size-{n}" for n in range(1, 9)])
def test_built_inclusion_proofs_verify(
    leaves: list[bytes], roots: dict[int, bytes], store: dict[NodeId, bytes], size: int
) -> None:
    for index in range(size):
        ranges = inclusion_ranges(index, size)
        # nodes_for names every node the proof needs, and nothing else is consulted.
        needed = {node: store[node] for node in nodes_for(ranges)}
        proof = assemble(ranges, needed)
        assert proof == assemble(ranges, store)
        assert verify_inclusion(index, size, leaf_hash(leaves[index]), proof, roots[size]) is None


@pytest.mark.parametrize("size", range(1, 9), ids=[f"size-{n}" for n in range(1, 9)])
def test_built_consistency_proofs_verify(
    roots: dict[int, bytes], store: dict[NodeId, bytes], size: int
) -> None:
    for old in range(1, size + 1):
        ranges = consistency_ranges(old, size)
        needed = {node: store[node] for node in nodes_for(ranges)}
        proof = assemble(ranges, needed)
        assert verify_consistency(old, size, proof, roots[old], roots[size]) is None


def test_built_proofs_equal_the_happy_path_probes(
    leaves: list[bytes],
    roots: dict[int, bytes],
    store: dict[NodeId, bytes],
    happy_probes: dict[str, dict[str, Any]],
) -> None:
    compared: set[str] = set()
    for name, probe in sorted(happy_probes.items()):
        want = [_b64(p) for p in probe["proof"] or []]
        if "leafIdx" in probe:
            index, size = probe["leafIdx"], probe["treeSize"]
            over_vectors = (
                size in roots
                and _b64(probe["root"]) == roots[size]
                and index < len(leaves)
                and _b64(probe["leafHash"]) == leaf_hash(leaves[index])
            )
            if over_vectors:
                assert assemble(inclusion_ranges(index, size), store) == want, name
                compared.add(name)
        else:
            old, new = probe["size1"], probe["size2"]
            over_vectors = (
                old in roots
                and new in roots
                and _b64(probe["root1"]) == roots[old]
                and _b64(probe["root2"]) == roots[new]
            )
            if over_vectors:
                assert assemble(consistency_ranges(old, new), store) == want, name
                compared.add(name)
    assert compared == VECTOR_HAPPY_PATHS


# --- argument checks ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("index", "size", "code"),
    [(0, 0, "index-out-of-range"), (5, 5, "index-out-of-range"), (-1, 4, "bad-size"),
     (0, -1, "bad-size")],
    ids=["empty-tree", "index-equals-size", "negative-index", "negative-size"],
)
def test_inclusion_ranges_refuse_bad_arguments(index: int, size: int, code: str) -> None:
    with pytest.raises(ProofError, match=r"leaf|negative") as excinfo:
        inclusion_ranges(index, size)
    assert excinfo.value.code == code


@pytest.mark.parametrize(
    ("old", "new"), [(3, 2), (-1, 4)], ids=["shrinking", "negative-old-size"]
)
def test_consistency_ranges_refuse_bad_sizes(old: int, new: int) -> None:
    with pytest.raises(ProofError, match="no consistency proof") as excinfo:
        consistency_ranges(old, new)
    assert excinfo.value.code == "bad-size"


@pytest.mark.parametrize(
    ("old", "new"), [(0, 0), (0, 5), (4, 4)], ids=["both-empty", "from-empty", "equal"]
)
def test_trivial_consistency_needs_no_nodes(old: int, new: int) -> None:
    assert consistency_ranges(old, new) == []


def test_compact_range_refuses_wrong_number_of_roots() -> None:
    with pytest.raises(ValueError, match="a tree of 3 leaves has 2 perfect roots"):
        CompactRange(3, [leaf_hash(b"only one root")])
