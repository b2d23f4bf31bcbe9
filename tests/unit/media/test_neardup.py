"""HashIndex: exact recall against a brute-force scan, persistence, and clusters."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprava.errors import BadInputError
from sprava.media.neardup import HashIndex, clusters
from sprava.media.phash import pdq_image

PDQ = Path(__file__).resolve().parents[4] / "shared" / "samples" / "threatexchange-pdq"


def _hex(code: np.ndarray) -> str:
    return bytes(code).hex()


def _brute_force(codes: np.ndarray, ids: np.ndarray, query: np.ndarray,
                 max_distance: int) -> list[tuple[int, int]]:
    """The oracle: popcount of XOR over every stored hash, nothing clever."""
    distances = np.unpackbits(codes ^ query, axis=1).sum(axis=1)
    hits = np.flatnonzero(distances <= max_distance)
    return sorted((int(ids[i]), int(distances[i])) for i in hits)


def _at_distance(rng: np.random.Generator, code: np.ndarray, distance: int) -> np.ndarray:
    bits = np.unpackbits(code)
    flip = rng.choice(256, size=distance, replace=False)
    bits[flip] ^= 1
    return np.packbits(bits)


def _planted(seed: int, background: int, planted: list[int]
             ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random hashes plus neighbours of ``query`` at the given distances, shuffled ids."""
    rng = np.random.default_rng(seed)
    query = rng.integers(0, 256, 32, dtype=np.uint8)
    codes = rng.integers(0, 256, (background, 32), dtype=np.uint8)
    near = [_at_distance(rng, query, d) for d in planted]
    if near:
        codes = np.vstack([codes, np.array(near, dtype=np.uint8)])
    ids = rng.permutation(len(codes)).astype(np.int64) * 3 + 7
    return codes, ids, query


def _index(codes: np.ndarray, ids: np.ndarray) -> HashIndex:
    index = HashIndex()
    index.add(ids.tolist(), [_hex(c) for c in codes])
    return index


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), background=st.integers(0, 3000),
       planted=st.lists(st.integers(0, 40), max_size=60),
       max_distance=st.sampled_from([0, 1, 8, 15, 16, 30, 31, 32, 40, 64, 256]))
def test_exact_recall_against_brute_force(seed: int, background: int, planted: list[int],
                                          max_distance: int) -> None:
    codes, ids, query = _planted(seed, background, planted)
    index = _index(codes, ids)
    expected = sorted(_brute_force(codes, ids, query, max_distance), key=lambda p: (p[1], p[0]))
    assert index.search(_hex(query), max_distance, limit=len(codes) + 1) == expected
    assert sum(d <= max_distance for d in planted) <= len(expected)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), limit=st.integers(0, 50))
def test_limit_keeps_the_closest_then_lowest_ids(seed: int, limit: int) -> None:
    rng = random.Random(seed)
    codes, ids, query = _planted(seed, 500, [rng.randrange(0, 32) for _ in range(60)])
    index = _index(codes, ids)
    everything = index.search(_hex(query), 31, limit=10_000)
    assert index.search(_hex(query), 31, limit=limit) == everything[:limit]


def test_exact_recall_at_two_hundred_thousand() -> None:
    """The scale where a bucketed index would start to cut corners; the scan does not."""
    codes, ids, query = _planted(1, 200_000, list(range(41)) * 3)
    index = HashIndex()
    index.add(ids, [_hex(c) for c in codes])
    got = index.search(_hex(query), 31, limit=1000)
    assert got == sorted(_brute_force(codes, ids, query, 31), key=lambda p: (p[1], p[0]))
    assert len(got) >= 32 * 3


def test_duplicates_and_same_hash_under_many_ids() -> None:
    index = HashIndex()
    index.add([5, 2, 9], ["ab" * 32] * 3)
    index.add([2], ["ab" * 32])
    assert index.search("ab" * 32) == [(2, 0), (2, 0), (5, 0), (9, 0)]
    assert len(index) == 4


def test_empty_index_and_empty_add() -> None:
    index = HashIndex()
    index.add([], [])
    assert len(index) == 0
    assert index.search("00" * 32, 256) == []


def test_save_load_round_trip_and_incremental_add(tmp_path: Path) -> None:
    codes, ids, query = _planted(7, 5000, list(range(0, 41, 2)))
    index = _index(codes[:3000], ids[:3000])
    path = tmp_path / "pdq.index"
    index.save(path)
    loaded = HashIndex.load(path)
    assert len(loaded) == 3000
    assert loaded.search(_hex(query), 40, 10_000) == index.search(_hex(query), 40, 10_000)

    loaded.add(ids[3000:].tolist(), [_hex(c) for c in codes[3000:]])  # after load: appends
    expected = sorted(_brute_force(codes, ids, query, 31), key=lambda p: (p[1], p[0]))
    assert loaded.search(_hex(query), 31, 10_000) == expected
    loaded.save(path)  # over the old file
    assert HashIndex.load(path).search(_hex(query), 31, 10_000) == expected
    assert [p.name for p in tmp_path.iterdir()] == ["pdq.index"]  # no temp file left


def test_file_format_is_as_documented(tmp_path: Path) -> None:
    index = HashIndex()
    index.add([1, -2], ["0f" * 32, "f0" * 32])
    index.save(tmp_path / "i")
    data = (tmp_path / "i").read_bytes()
    assert data[:16] == b"SPRAVA-PDQ-INDEX"
    assert int.from_bytes(data[16:20], "little") == 1
    assert int.from_bytes(data[24:32], "little") == 2
    body = data[64:]
    assert np.frombuffer(body[:16], "<i8").tolist() == [1, -2]
    assert body[16:] == bytes.fromhex("0f" * 32 + "f0" * 32)
    import hashlib

    assert data[32:64] == hashlib.sha256(body).digest()


def test_empty_index_round_trip(tmp_path: Path) -> None:
    HashIndex().save(tmp_path / "empty")
    loaded = HashIndex.load(tmp_path / "empty")
    assert len(loaded) == 0
    loaded.add([3], ["00" * 32])
    assert loaded.search("00" * 32) == [(3, 0)]


@pytest.mark.parametrize("damage", ["flip", "truncate", "magic", "version", "count", "empty"])
def test_damaged_file_is_refused(tmp_path: Path, damage: str) -> None:
    index = HashIndex()
    index.add(range(100), [f"{i:064x}" for i in range(100)])
    path = tmp_path / "pdq.index"
    index.save(path)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[-1] ^= 1
    elif damage == "truncate":
        del data[-32:]
    elif damage == "magic":
        data[0:6] = b"NOTPDQ"
    elif damage == "version":
        data[16] = 2
    elif damage == "count":
        data[24] += 1
    else:
        data = bytearray()
    path.write_bytes(bytes(data))
    with pytest.raises(BadInputError, match="not a usable hash index") as caught:
        HashIndex.load(path)
    assert caught.value.code == "corrupt-index"


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        HashIndex.load(tmp_path / "absent")


def test_failed_save_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pdq.index"
    old = HashIndex()
    old.add([1], ["11" * 32])
    old.save(path)
    before = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk gone")

    new = HashIndex()
    new.add([2], ["22" * 32])
    monkeypatch.setattr("sprava.media.neardup.os.fsync", crash)
    with pytest.raises(OSError, match="disk gone"):
        new.save(path)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["pdq.index"]


@pytest.mark.parametrize(("ids", "hexes", "why"), [
    ([1], ["ab" * 31], "not PDQ hashes"),
    ([1], ["ab" * 31 + " ab"], "not PDQ hashes"),
    ([1], ["zz" * 32], "not PDQ hashes"),
    ([1], [b"ab" * 32], "not PDQ hashes"),
    ([1, 2], ["ab" * 32], "2 ids for 1 hashes"),
    ([1.5], ["ab" * 32], "must be 64-bit integers"),
    ([2**63], ["ab" * 32], "must be 64-bit integers"),
    (np.array([2**64 - 1], dtype=np.uint64), ["ab" * 32], "does not fit"),
])
def test_add_refuses_bad_input_and_stores_nothing(ids: object, hexes: list[object],
                                                   why: str) -> None:
    index = HashIndex()
    with pytest.raises(BadInputError, match=why) as caught:
        index.add(ids, hexes)  # type: ignore[arg-type]
    assert caught.value.code == "bad-hash"
    assert len(index) == 0


@pytest.mark.parametrize(("max_distance", "limit"), [(-1, 10), (257, 10), (31, -1)])
def test_search_refuses_bad_query(max_distance: int, limit: int) -> None:
    with pytest.raises(BadInputError) as caught:
        HashIndex().search("00" * 32, max_distance, limit)
    assert caught.value.code == "bad-query"


def test_search_refuses_bad_hash() -> None:
    with pytest.raises(BadInputError) as caught:
        HashIndex().search("00" * 31)
    assert caught.value.code == "bad-hash"


def test_sample_photos_find_their_edits_and_not_their_rotations() -> None:
    edits = sorted((PDQ / "bridge-mods").glob("*.jpg"))
    rotations = sorted((PDQ / "reg-test-input" / "dih").glob("bridge-[2-8]-*.jpg"))
    assert len(edits) == 12
    assert len(rotations) == 7
    paths = edits + rotations
    index = HashIndex()
    index.add(list(range(len(paths))), [pdq_image(p).hex for p in paths])
    found = index.search(pdq_image(PDQ / "bridge-mods" / "aaa-orig.jpg").hex)
    assert sorted(i for i, _ in found) == list(range(len(edits)))


# -- clusters ---------------------------------------------------------------------------


def test_clusters_example() -> None:
    assert clusters([(5, 3), (3, 9), (1, 2), (7, 7), (12, 2)]) == {
        1: 1, 2: 1, 3: 3, 5: 3, 7: 7, 9: 3, 12: 1}
    assert clusters([]) == {}


def _components(pairs: list[tuple[int, int]]) -> dict[int, int]:
    """The oracle: repeated breadth-first search over the undirected graph."""
    neighbours: dict[int, set[int]] = {}
    for a, b in pairs:
        neighbours.setdefault(a, set()).add(b)
        neighbours.setdefault(b, set()).add(a)
    answer: dict[int, int] = {}
    for start in sorted(neighbours):
        if start in answer:
            continue
        seen, todo = {start}, [start]
        while todo:
            for nxt in neighbours[todo.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        for member in seen:
            answer[member] = min(seen)
    return answer


@settings(max_examples=200, deadline=None)
@given(pairs=st.lists(st.tuples(st.integers(-20, 60), st.integers(-20, 60)), max_size=80),
       seed=st.integers(0, 1000))
def test_clusters_are_components_named_by_their_smallest_id(pairs: list[tuple[int, int]],
                                                            seed: int) -> None:
    got = clusters(pairs)
    assert got == _components(pairs)
    assert list(got) == sorted(got)
    shuffled = [(b, a) if i % 2 else (a, b) for i, (a, b) in enumerate(pairs)]
    random.Random(seed).shuffle(shuffled)
    assert clusters(shuffled) == got  # order and direction of pairs do not matter


def test_clusters_of_a_long_chain() -> None:
    """Deep chains must not recurse: a path of 200,000 items, fed from the far end."""
    n = 200_000
    got = clusters((i, i + 1) for i in reversed(range(n)))
    assert len(got) == n + 1
    assert set(got.values()) == {0}
