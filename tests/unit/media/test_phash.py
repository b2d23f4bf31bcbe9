"""PDQ against ThreatExchange's published hashes, near-duplicates and transforms.

Expected values come from ``../shared/samples/threatexchange-pdq`` (see its SOURCE.txt):
``expected_pdq.csv`` compiles what ThreatExchange's tests and READMEs publish, each row
with its tolerance. Rows marked ``exact`` (python-threatexchange, the Java unit test, the
CLI) must match bit for bit and in quality; the other implementations' rows (pure-Python
PDQ, an older C++ build) carry upstream's own cross-implementation tolerance, Hamming ≤ 16
(``pdq/python/pdqhashing/tests/pdq_test.py``).
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pdqhash
import pytest
from PIL import Image

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits
from sprava.media.phash import MATCH_DISTANCE, PdqHash, hamming, pdq_image

SAMPLES = Path(__file__).resolve().parents[4] / "shared" / "samples"
PDQ = SAMPLES / "threatexchange-pdq"
CROSS_IMPLEMENTATION_TOLERANCE = 16  # pdq/python/pdqhashing/tests/pdq_test.py
# Listed upstream but not copied into the samples (SOURCE.txt says why).
NOT_COPIED = {"misc-images/b.jpg", "reg-test-input/exif-rotn/exif-rotn-1.jpg",
              "reg-test-input/exif-rotn/exif-rotn-3.jpg",
              "reg-test-input/exif-rotn/exif-rotn-6.jpg",
              "reg-test-input/exif-rotn/exif-rotn-8.jpg"}


def _rows(name: str) -> list[dict[str, str]]:
    assert PDQ.is_dir(), f"the PDQ samples are missing: {PDQ}"
    with (PDQ / name).open(newline="") as f:
        return list(csv.DictReader(f))


def _file_of(row: dict[str, str]) -> str:
    """``expected_pdq.csv`` names a file, sometimes with a note in brackets after it."""
    return row["file"].split(" (")[0]


def _plain_rows(exact: bool) -> list[dict[str, str]]:
    """Rows about a file as it is (no '#' preprocessing variant), exact or tolerant."""
    rows = [r for r in _rows("expected_pdq.csv")
            if "#" not in r["file"] and _file_of(r) not in NOT_COPIED]
    return [r for r in rows if (r["tolerance"] == "exact") == exact]


def _ids(rows: list[dict[str, str]]) -> list[str]:
    return [f"{_file_of(r)}|{r['implementation'][:24]}" for r in rows]


EXACT = _plain_rows(exact=True)
TOLERANT = _plain_rows(exact=False)


def test_samples_are_present() -> None:
    """The expected rows above are read from the samples; an empty list would pass vacuously."""
    assert len(EXACT) == 7
    assert len(TOLERANT) == 46  # 12 pure-Python, 18 unit-test, 16 older C++
    for row in EXACT + TOLERANT:
        assert (PDQ / _file_of(row)).is_file(), row["file"]


@pytest.mark.parametrize("row", EXACT, ids=_ids(EXACT))
def test_exact_reference_hashes(row: dict[str, str]) -> None:
    got = pdq_image(PDQ / _file_of(row))
    assert got.hex == row["pdq_hex"]
    if row["quality"]:
        assert got.quality == int(row["quality"])


@pytest.mark.parametrize("row", TOLERANT, ids=_ids(TOLERANT))
def test_other_implementations_within_upstream_tolerance(row: dict[str, str]) -> None:
    got = pdq_image(PDQ / _file_of(row))
    assert hamming(got.hex, row["pdq_hex"]) <= CROSS_IMPLEMENTATION_TOLERANCE
    if row["quality"]:
        assert got.quality == int(row["quality"])


def test_same_as_pdqhash_on_full_size_pixels() -> None:
    """Every sample (≤ 2000 px) is hashed at full size: the 2048 px working size is a no-op."""
    rows = _rows("observed_pdqhash-0.2.8.csv")
    assert len(rows) == 36
    for row in rows:
        got = pdq_image(PDQ / row["file"])
        assert (got.hex, got.quality) == (row["pdq_hex"], int(row["quality"])), row["file"]


# Label mapping from SOURCE.txt: the CLI's names for PIL's transposes.
CLI_TRANSFORMS = {
    "ORIGINAL": None,
    "ROTATE90": Image.Transpose.ROTATE_90,
    "ROTATE180": Image.Transpose.ROTATE_180,
    "ROTATE270": Image.Transpose.ROTATE_270,
    "FLIPX": Image.Transpose.FLIP_TOP_BOTTOM,
    "FLIPY": Image.Transpose.FLIP_LEFT_RIGHT,
    "FLIPPLUS1": Image.Transpose.TRANSPOSE,
    "FLIPMINUS1": Image.Transpose.TRANSVERSE,
}


def test_cli_rotation_hashes_of_la_png(tmp_path: Path) -> None:
    expected = {r["file"].split("#")[1]: r["pdq_hex"] for r in _rows("expected_pdq.csv")
                if r["file"].startswith("python-threatexchange-resources/LA.png#")}
    assert set(expected) == set(CLI_TRANSFORMS)
    with Image.open(PDQ / "python-threatexchange-resources/LA.png") as image:
        image.load()
        for name, transpose in CLI_TRANSFORMS.items():
            out = tmp_path / f"{name}.png"
            (image if transpose is None else image.transpose(transpose)).save(out)
            assert pdq_image(out).hex == expected[name], name


def test_twelve_edits_are_near_duplicates_of_the_original() -> None:
    edits = sorted((PDQ / "bridge-mods").glob("*.jpg"))
    assert len(edits) == 12
    original = pdq_image(PDQ / "bridge-mods" / "aaa-orig.jpg").hex
    distances = {p.name: hamming(original, pdq_image(p).hex) for p in edits}
    assert max(distances.values()) <= MATCH_DISTANCE, distances


def test_rotations_and_flips_are_not_near_duplicates() -> None:
    dih = PDQ / "reg-test-input" / "dih"
    transforms = sorted(dih.glob("bridge-[2-8]-*.jpg"))
    assert len(transforms) == 7  # plus bridge-1-original: the 8 dihedral versions
    original = pdq_image(dih / "bridge-1-original.jpg").hex
    for path in transforms:
        assert hamming(original, pdq_image(path).hex) > MATCH_DISTANCE, path.name


def test_distances_asserted_by_the_java_reference(tmp_path: Path) -> None:
    """PDQHasherTest.java: rotate-90 at 120, pen-and-coaster at 138, greyscale at 0,
    half size at 4 (with Java's scaler; Pillow's bicubic lands within the same 4)."""
    bridge = PDQ / "reg-test-input/dih/bridge-1-original.jpg"
    original = pdq_image(bridge).hex
    rows = {(r["file_b"], r["basis"][:8]): int(r["hamming_distance"])
            for r in _rows("expected_distances.csv")}
    for other in ("reg-test-input/dih/bridge-2-rotate-90.jpg",
                  "reg-test-input/pen-and-coaster.png"):
        assert hamming(original, pdq_image(PDQ / other).hex) == rows[(other, "asserted")]
    with Image.open(bridge) as image:
        image.convert("L").save(tmp_path / "grey.png")
        image.resize((image.width // 2, image.height // 2)).save(tmp_path / "half.png")
    assert hamming(original, pdq_image(tmp_path / "grey.png").hex) == 0
    assert hamming(original, pdq_image(tmp_path / "half.png").hex) <= 4


def test_exif_orientation_is_ignored_like_threatexchange(tmp_path: Path) -> None:
    """Same pixels, orientation tag 6 or none: the same hash (the tag is not applied)."""
    with Image.open(PDQ / "bridge-mods/square-512x512.jpg") as image:
        exif = Image.Exif()
        exif[0x0112] = 6
        image.save(tmp_path / "plain.jpg", quality=95)
        image.save(tmp_path / "tagged.jpg", quality=95, exif=exif)
    with Image.open(tmp_path / "tagged.jpg") as tagged:
        assert tagged.getexif()[0x0112] == 6
    assert pdq_image(tmp_path / "plain.jpg") == pdq_image(tmp_path / "tagged.jpg")


def test_heic_photo(tmp_path: Path) -> None:
    import pillow_heif

    source = PDQ / "bridge-mods/square-512x512.jpg"
    with Image.open(source) as image:
        pillow_heif.from_pillow(image).save(tmp_path / "photo.heic", quality=90)
    assert hamming(pdq_image(source).hex, pdq_image(tmp_path / "photo.heic").hex) <= 16


def test_large_picture_is_hashed_at_working_size_close_to_full_size(tmp_path: Path) -> None:
    """A 10-megapixel JPEG: reduced while decoding, within 4 bits of the full-size hash."""
    with Image.open(PDQ / "reg-test-input/dih/bridge-1-original.jpg") as image:
        big = image.resize((4000, 2510), Image.Resampling.BICUBIC)
    big.save(tmp_path / "big.jpg", quality=90)
    with Image.open(tmp_path / "big.jpg") as decoded:
        bits, quality = pdqhash.compute(np.asarray(decoded.convert("RGB")))
    full = np.packbits(bits.astype(np.uint8)).tobytes().hex()
    got = pdq_image(tmp_path / "big.jpg")
    assert hamming(got.hex, full) <= 4
    assert got.quality == quality


def test_too_many_pixels_by_limit() -> None:
    with pytest.raises(BadInputError, match="more than the 1,000 allowed") as caught:
        pdq_image(PDQ / "misc-images/wee.jpg", MediaLimits(max_pixels=1000))
    assert caught.value.code == "too-many-pixels"


def test_missing_file_is_the_callers_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        pdq_image(tmp_path / "absent.jpg")


def test_hash_value_type() -> None:
    got = pdq_image(PDQ / "misc-images/small.jpg")
    assert got == PdqHash("0007001f003f003f007f00ff00ff00ff01ff01ff01ff03ff03ff03ff03ff03ff", 0)
    with pytest.raises(AttributeError):
        got.quality = 100  # type: ignore[misc]


def test_hamming() -> None:
    zero, ones = "0" * 64, "f" * 64
    assert hamming(zero, ones) == 256
    assert hamming(zero, zero) == 0
    assert hamming("8" + "0" * 63, zero) == 1
    assert hamming("A" * 64, "a" * 64) == 0


@pytest.mark.parametrize("bad", ["0" * 63, "0" * 65, "0x" + "0" * 62, " " + "0" * 63,
                                 "0" * 31 + "_" + "0" * 32, "g" * 64, "٠" * 64, ""])
def test_hamming_refuses_what_is_not_a_hash(bad: str) -> None:
    with pytest.raises(BadInputError, match="not a PDQ hash") as caught:
        hamming(bad, "0" * 64)
    assert caught.value.code == "bad-hash"
