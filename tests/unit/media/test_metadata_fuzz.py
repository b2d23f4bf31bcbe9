"""Hostile bytes: whatever a file holds, extract() returns Metadata or raises BadInputError.

Random byte strings under every supported type, and truncations and bit flips of real
files (a camera JPEG with GPS and a maker note, and PNG, TIFF, WebP, HEIC, MP4, WebM built
here). Flips are aimed mostly at the first 16 KiB, where the headers and tags live.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_metadata_assets import (
    GPS_SAMPLE,
    encoder,
    exif_block,
    image_file,
    png_chunk,
    png_file,
    require_samples,
    video_file,
)

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits
from sprava.media.metadata import SUPPORTED_MEDIA_TYPES, Metadata, extract

LIMITS = MediaLimits(max_metadata_bytes=10_000)  # small enough that the cut runs too
FUZZ = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One real file per type, each rich in metadata."""
    require_samples()
    folder = tmp_path_factory.mktemp("originals")
    exif = exif_block(altitude=(12.0, 0), direction=90.0, serial="42", lens="kit")
    files = {
        "image/jpeg": GPS_SAMPLE,
        "image/tiff": image_file(folder / "a.tiff", "image/tiff", exif),
        "image/webp": image_file(folder / "a.webp", "image/webp", exif),
        "image/heic": image_file(folder / "a.heic", "image/heic", exif),
        "video/mp4": video_file(folder / "a.mp4", "mp4", encoder("libx264", "mpeg4"),
                                tags={"location": "+53.9+027.5/"}, rotation=90),
        "video/webm": video_file(folder / "a.webm", "webm", encoder("libvpx-vp9", "libvpx"),
                                 tags={"LOCATION": "+53.9+027.5/"}),
    }
    png = folder / "a.png"
    png.write_bytes(png_file(32, 16, before=[png_chunk(b"eXIf", exif)],
                             after=[png_chunk(b"tEXt", b"Author\x00W7")]))
    files["image/png"] = png
    return {media_type: path.read_bytes() for media_type, path in files.items()}


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "input"


def _must_not_crash(path: Path, data: bytes, media_type: str) -> None:
    path.write_bytes(data)
    meta: Metadata | BadInputError
    try:
        meta = extract(path, media_type, LIMITS)
    except BadInputError as exc:
        meta = exc
    if isinstance(meta, BadInputError):
        assert meta.code in {"corrupt-media", "too-many-pixels"}, meta.code
        assert meta.message
        return
    text = json.dumps(meta.raw, allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    assert len(text.encode()) <= LIMITS.max_metadata_bytes
    json.dumps(meta.fields, allow_nan=False)
    assert isinstance(meta.raw["problems"], list)


@FUZZ
@given(media_type=st.sampled_from(sorted(SUPPORTED_MEDIA_TYPES)), data=st.binary(max_size=4096))
def test_random_bytes(scratch: Path, media_type: str, data: bytes) -> None:
    _must_not_crash(scratch, data, media_type)


@st.composite
def _damage(draw: st.DrawFn, size: int) -> tuple[int, list[tuple[int, int]]]:
    cut = draw(st.one_of(st.just(size), st.integers(0, size)))
    hot = min(size, 16_384)
    position = st.one_of(st.integers(0, hot - 1), st.integers(0, size - 1))
    flips = draw(st.lists(st.tuples(position, st.integers(0, 7)), max_size=24))
    return cut, flips


MEDIA = ["image/jpeg", "image/png", "image/tiff", "image/webp", "image/heic",
         "video/mp4", "video/webm"]


@pytest.mark.parametrize("media_type", MEDIA)
def test_truncations_and_bit_flips_of_real_files(
    originals: dict[str, bytes], scratch: Path, media_type: str
) -> None:
    original = originals[media_type]

    @FUZZ
    @given(damage=_damage(len(original)))
    def run(damage: tuple[int, list[tuple[int, int]]]) -> None:
        cut, flips = damage
        data = bytearray(original)
        for position, bit in flips:
            data[position] ^= 1 << bit
        _must_not_crash(scratch, bytes(data[:cut]), media_type)

    run()
