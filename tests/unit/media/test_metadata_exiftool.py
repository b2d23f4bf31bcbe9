"""ExifTool as an independent oracle: our fields must agree with ``exiftool -j -n``.

ExifTool (Phil Harvey's, Debian package ``libimage-exiftool-perl``) is the reference
reader that courts and open-source investigators use. Agreement on every sample camera file
and on every container we build is what lets an analyst trust ``fields`` without checking.
The test fails, never skips, when ExifTool is missing: a CI run without its oracle would
pass without having checked anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_metadata_assets import (
    CREATION_TIME,
    encoder,
    exif_block,
    image_file,
    png_chunk,
    png_file,
    require_samples,
    sample_jpegs,
    video_file,
)

from sprava.domain.mediatype import sniff
from sprava.media.metadata import extract

IMAGE_TAGS = [
    "-DateTimeOriginal", "-OffsetTimeOriginal", "-Make", "-Model", "-Orientation",
    "-Composite:GPSLatitude", "-Composite:GPSLongitude", "-ImageWidth", "-ImageHeight",
]
VIDEO_TAGS = [
    "-Composite:Rotation", "-Composite:GPSLatitude", "-Composite:GPSLongitude",
    "-Composite:GPSAltitude", "-QuickTime:Duration", "-QuickTime:CreateDate",
    "-QuickTime:ImageWidth", "-QuickTime:ImageHeight", "-QuickTime:VideoFrameRate",
]


def _exiftool() -> str:
    path = shutil.which("exiftool")
    if path is None:
        pytest.fail(
            "ExifTool is not installed: it is the oracle for the metadata tests. "
            "Install it with `apt-get install -y libimage-exiftool-perl` "
            "(scripts/install-test-deps.sh does this)."
        )
    return path


def _oracle(exiftool: str, files: list[Path], tags: list[str]) -> dict[Path, dict[str, Any]]:
    """One ExifTool run for many files (it starts a Perl interpreter each time)."""
    out = subprocess.run(
        [exiftool, "-j", "-n", *tags, *map(str, files)],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout
    return {Path(entry["SourceFile"]): entry for entry in json.loads(out)}


def _iso(exif_time: str, offset: str | None) -> str:
    date, clock = exif_time.split(" ")
    return f"{date.replace(':', '-')}T{clock}{offset or ''}"


def _agree(fields: dict[str, Any], truth: dict[str, Any], *, dimensions: bool = True) -> None:
    if "DateTimeOriginal" in truth:
        assert fields["captured_at"] == _iso(truth["DateTimeOriginal"],
                                             truth.get("OffsetTimeOriginal"))
        assert fields["captured_at_offset_known"] is ("OffsetTimeOriginal" in truth)
    else:
        assert fields.get("captured_at_source") != "DateTimeOriginal"
    for ours, theirs in (("camera_make", "Make"), ("camera_model", "Model")):
        assert fields.get(ours) == (str(truth[theirs]).strip() if theirs in truth else None)
    assert fields.get("orientation") == truth.get("Orientation")
    if "GPSLatitude" in truth:
        assert fields["gps"]["lat"] == pytest.approx(truth["GPSLatitude"], abs=1e-5)
        assert fields["gps"]["lon"] == pytest.approx(truth["GPSLongitude"], abs=1e-5)
    else:
        assert "gps" not in fields
    if dimensions:
        assert (fields["width"], fields["height"]) == (truth["ImageWidth"], truth["ImageHeight"])


def test_every_sample_jpeg_agrees_with_exiftool() -> None:
    exiftool = _exiftool()
    require_samples()
    files = sample_jpegs()
    assert len(files) == 24
    truths = _oracle(exiftool, files, IMAGE_TAGS)
    for path in files:
        fields = extract(path, sniff(path.read_bytes()[:4096])).fields
        try:
            _agree(fields, truths[path])
        except AssertionError as exc:
            raise AssertionError(f"{path.name}: {exc}") from exc


def test_built_images_agree_with_exiftool(tmp_path: Path) -> None:
    exiftool = _exiftool()
    exif = exif_block(lat=(33.8568, "S"), lon=(151.2153, "E"), offset="+10:00")
    files = {
        media_type: image_file(tmp_path / media_type.replace("/", "."), media_type, exif)
        for media_type in ("image/jpeg", "image/webp", "image/tiff", "image/heic")
    }
    late = tmp_path / "late-exif.png"  # eXIf after the image data
    late.write_bytes(png_file(40, 30, after=[png_chunk(b"eXIf", exif)]))
    files["image/png"] = late
    truths = _oracle(exiftool, list(files.values()), IMAGE_TAGS)
    for media_type, path in files.items():
        fields = extract(path, media_type).fields
        assert fields["gps"]["lat"] < 0
        # libheif presents HEIF turned by its irot box; ExifTool gives the stored size
        _agree(fields, truths[path], dimensions=media_type != "image/heic")


def test_built_videos_agree_with_exiftool(tmp_path: Path) -> None:
    exiftool = _exiftool()
    codec = encoder("libx264", "mpeg4")
    tags = {"creation_time": CREATION_TIME, "location": "-33.8568+151.2153+012.500/"}
    files = [
        video_file(tmp_path / "upright.mp4", "mp4", codec, tags=tags),
        video_file(tmp_path / "turned.mp4", "mp4", codec, tags=tags, rotation=90),
        video_file(tmp_path / "turned.mov", "mov", codec, tags=tags, rotation=180),
        video_file(tmp_path / "other.mp4", "mp4", codec, tags=tags, rotation=-90),
    ]
    truths = _oracle(exiftool, files, VIDEO_TAGS)
    for path in files:
        fields, truth = extract(path, sniff(path.read_bytes()[:4096])).fields, truths[path]
        assert fields.get("rotation", 0) == truth.get("Rotation", 0), path.name
        # ExifTool reads the 3GPP loci box, whose 16.16 fixed point rounds to 1/65536°
        assert fields["gps"]["lat"] == pytest.approx(truth["GPSLatitude"], abs=1 / 65536)
        assert fields["gps"]["lon"] == pytest.approx(truth["GPSLongitude"], abs=1 / 65536)
        assert fields["gps"]["altitude_m"] == pytest.approx(truth["GPSAltitude"], abs=1e-3)
        assert fields["duration_s"] == pytest.approx(truth["Duration"], abs=0.05)
        assert fields["frame_rate"] == pytest.approx(truth["VideoFrameRate"], rel=1e-3)
        assert (fields["width"], fields["height"]) == (truth["ImageWidth"], truth["ImageHeight"])
        # QuickTime stores UTC; ExifTool prints it without a zone
        assert fields["captured_at"] == _iso(truth["CreateDate"], "+00:00")
