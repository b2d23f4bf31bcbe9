"""Hostile images: bombs refused from the header, and fuzzed bytes that only ever hash or
raise ``BadInputError``."""

from __future__ import annotations

import struct
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits
from sprava.media.phash import PdqHash, pdq_image

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples"
PDQ = SAMPLES / "threatexchange-pdq"
# Small real files of each kind, so that fuzzing reaches deep into the decoders quickly.
SEEDS = {
    "jpeg": PDQ / "misc-images/wee.jpg",
    "png": PDQ / "python-threatexchange-resources/random-image-from-test_pdq_hasher.png",
    "png16": PDQ / "python-threatexchange-resources/I16.png",
}
FUZZ = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header declaring ``width`` × ``height`` RGB, with a few KB of IDAT.

    Decoding it for real would need width × height × 3 bytes (7.5 GB at 50,000²).
    """
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1_000_000, 9)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", idat) + _chunk(
        b"IEND", b"")


@pytest.fixture(scope="module")
def seeds() -> dict[str, bytes]:
    for path in SEEDS.values():
        assert path.is_file(), f"sample missing: {path}"
    return {name: path.read_bytes() for name, path in SEEDS.items()}


@pytest.fixture
def scratch(tmp_path: Path) -> Path:
    return tmp_path / "input"


def _hash_or_refuse(path: Path, data: bytes) -> None:
    """The property: a PdqHash of 64 hex digits, or BadInputError; nothing else escapes."""
    path.write_bytes(data)
    got: PdqHash | BadInputError
    try:
        got = pdq_image(path)
    except BadInputError as exc:
        got = exc
    if isinstance(got, BadInputError):
        assert got.code in {"corrupt-media", "too-many-pixels"}
        return
    assert isinstance(got, PdqHash)
    assert len(got.hex) == 64
    assert 0 <= got.quality <= 100


@pytest.mark.parametrize(("width", "height"), [(50_000, 50_000), (12_000, 12_000)])
def test_png_bomb_refused_from_header(tmp_path: Path, width: int, height: int) -> None:
    """50,000² is past Pillow's own bomb limit; 12,000² only past ours (100 M pixels)."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_bomb(width, height))
    assert bomb.stat().st_size < 10_000
    start = time.perf_counter()
    with pytest.raises(BadInputError) as caught:
        pdq_image(bomb)
    assert time.perf_counter() - start < 1.0
    assert caught.value.code == "too-many-pixels"


def test_small_declared_size_with_short_data_is_corrupt(tmp_path: Path) -> None:
    """A 2,000² header over a few KB of pixels is truncated, not a bomb."""
    path = tmp_path / "short.png"
    path.write_bytes(_png_bomb(2000, 2000))
    with pytest.raises(BadInputError, match="truncated, corrupt") as caught:
        pdq_image(path, MediaLimits())
    assert caught.value.code == "corrupt-media"


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"%!PS-Adobe-3.0 EPSF-3.0\n",
                                     b"\x89PNG\r\n\x1a\n"])
def test_not_an_image(tmp_path: Path, content: bytes) -> None:
    """Including EPS, which Pillow would hand to Ghostscript if it were allowed."""
    path = tmp_path / "thing"
    path.write_bytes(content)
    with pytest.raises(BadInputError) as caught:
        pdq_image(path)
    assert caught.value.code == "corrupt-media"


def test_every_truncation_of_a_jpeg_is_refused(tmp_path: Path, seeds: dict[str, bytes]) -> None:
    data = seeds["jpeg"]
    for cut in range(0, len(data) - 2, 97):
        path = tmp_path / f"cut{cut}.jpg"
        path.write_bytes(data[:cut])
        with pytest.raises(BadInputError) as caught:
            pdq_image(path)
        assert caught.value.code == "corrupt-media"


@FUZZ
@given(data=st.binary(max_size=4096))
def test_fuzz_random_bytes(scratch: Path, data: bytes) -> None:
    _hash_or_refuse(scratch, data)


@FUZZ
@given(kind=st.sampled_from(sorted(SEEDS)), cut=st.floats(0, 1))
def test_fuzz_truncations(scratch: Path, seeds: dict[str, bytes], kind: str, cut: float) -> None:
    data = seeds[kind]
    _hash_or_refuse(scratch, data[: int(len(data) * cut)])


@FUZZ
@given(kind=st.sampled_from(sorted(SEEDS)),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
                      min_size=1, max_size=8))
def test_fuzz_byte_mutations(scratch: Path, seeds: dict[str, bytes], kind: str,
                             edits: list[tuple[float, int]]) -> None:
    data = bytearray(seeds[kind])
    for where, value in edits:
        data[int(where * len(data))] = value
    _hash_or_refuse(scratch, bytes(data))
