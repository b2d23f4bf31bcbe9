"""Video and audio metadata from files PyAV encodes here: MP4, QuickTime, WebM, Matroska, Ogg."""

from __future__ import annotations

from pathlib import Path

import pytest
from test_metadata_assets import (
    CREATION_TIME,
    ISO6709,
    audio_file,
    encoder,
    video_file,
)

from sprava.domain.mediatype import sniff
from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits
from sprava.media.metadata import Metadata, extract

TAGS = {"creation_time": CREATION_TIME, "location": ISO6709}
APPLE_TAGS = {
    "creation_time": CREATION_TIME,
    "com.apple.quicktime.creationdate": "2024-03-05T13:11:12+0300",
    "com.apple.quicktime.location.ISO6709": "+53.9000+027.5667+220.000/",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 12",
    "com.apple.quicktime.software": "17.4.1",
}


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    h264 = encoder("libx264", "h264", "mpeg4")
    vpx = encoder("libvpx-vp9", "libvpx", "vp9", "vp8")
    return {
        "mp4": video_file(folder / "a.mp4", "mp4", h264, tags=TAGS, audio="aac"),
        "mp4-mpeg4": video_file(folder / "b.mp4", "mp4", encoder("mpeg4"), tags=TAGS),
        "mp4-rotated": video_file(folder / "r.mp4", "mp4", h264, tags=TAGS, rotation=90),
        "mov": video_file(folder / "a.mov", "mov", h264, tags=APPLE_TAGS,
                          options={"movflags": "use_metadata_tags"}),
        "webm": video_file(folder / "a.webm", "webm", vpx, tags=TAGS, audio="libopus"),
        "mkv": video_file(folder / "a.mkv", "matroska", h264, tags=TAGS),
        "ogg": audio_file(folder / "a.ogg", "ogg", "libopus", {"title": "Interview W7"}),
    }


DEFAULT_LIMITS = MediaLimits()


def _extract(path: Path, limits: MediaLimits = DEFAULT_LIMITS) -> Metadata:
    return extract(path, sniff(path.read_bytes()[:4096]), limits)


@pytest.mark.parametrize("name", ["mp4", "mp4-mpeg4", "webm", "mkv"])
def test_video_fields(videos: dict[str, Path], name: str) -> None:
    meta = _extract(videos[name])
    fields = meta.fields
    assert fields["duration_s"] == pytest.approx(0.4, abs=0.05)
    assert fields["frame_rate"] == 25
    assert (fields["width"], fields["height"]) == (64, 48)
    assert fields["video_codec"] in {"h264", "mpeg4", "vp8", "vp9"}
    assert fields["bit_rate"] > 0
    assert fields["captured_at"] == "2024-03-05T10:11:12+00:00"
    assert fields["captured_at_offset_known"] is True
    assert fields["gps"] == {"lat": 53.9, "lon": 27.5667, "altitude_m": 220.0}
    assert meta.raw["streams"][0]["type"] == "video"
    assert meta.raw["format"]["tags"]


def test_codecs_are_named(videos: dict[str, Path]) -> None:
    assert _extract(videos["mp4-mpeg4"]).fields["video_codec"] == "mpeg4"
    mp4 = _extract(videos["mp4"]).fields
    assert mp4["audio_codec"] == "aac"
    assert _extract(videos["webm"]).fields["audio_codec"] == "opus"
    assert _extract(videos["webm"]).fields["video_codec"] in {"vp8", "vp9"}


def test_rotation_from_the_track_matrix(videos: dict[str, Path]) -> None:
    # PyAV's set_display_rotation(90) turns counter-clockwise: a player turns 270 clockwise.
    rotated = _extract(videos["mp4-rotated"])
    assert rotated.fields["rotation"] == 270
    assert rotated.raw["QuickTime"]["tracks"][0]["handler"] == "vide"
    assert _extract(videos["mp4"]).fields["rotation"] == 0


def test_quicktime_apple_tags(videos: dict[str, Path]) -> None:
    fields = _extract(videos["mov"]).fields
    assert fields["captured_at"] == "2024-03-05T13:11:12+03:00"  # local time, offset kept
    assert fields["captured_at_source"] == "com.apple.quicktime.creationdate"
    assert fields["camera_make"] == "Apple"
    assert fields["camera_model"] == "iPhone 12"
    assert fields["software"] == "17.4.1"
    assert fields["gps"]["lat"] == pytest.approx(53.9)
    assert fields["gps"]["altitude_m"] == pytest.approx(220.0)


def test_audio_only(videos: dict[str, Path]) -> None:
    meta = _extract(videos["ogg"])
    assert meta.raw["format"]["media_type"] == "audio/ogg"
    assert meta.fields["audio_codec"] == "opus"
    assert meta.fields["duration_s"] == pytest.approx(1.0, abs=0.05)
    assert not {"video_codec", "width", "height", "frame_rate"} & set(meta.fields)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("+53.9000+027.5667/", {"lat": 53.9, "lon": 27.5667}),
        ("-33.8568+151.2153+012.5/", {"lat": -33.8568, "lon": 151.2153, "altitude_m": 12.5}),
        ("+4042.60-07400.36/", {"lat": 40 + 42.6 / 60, "lon": -(74 + 0.36 / 60)}),
        ("+404236-0740022CRSWGS_84/", {"lat": 40 + 42 / 60 + 36 / 3600,
                                       "lon": -(74 + 0 / 60 + 22 / 3600)}),
    ],
)
def test_iso6709_forms(tmp_path: Path, text: str, expected: dict[str, float]) -> None:
    # Matroska keeps tags verbatim (FFmpeg's MP4 muxer rewrites ©xyz as decimal degrees).
    path = video_file(tmp_path / "l.mkv", "matroska", encoder("mpeg4"), tags={"LOCATION": text})
    gps = _extract(path).fields["gps"]
    assert gps == pytest.approx(expected)


@pytest.mark.parametrize("text", ["+00.0000+000.0000/", "north of the river", "+91.0+010.0/"])
def test_unusable_locations_are_noted(tmp_path: Path, text: str) -> None:
    path = video_file(tmp_path / "l.mkv", "matroska", encoder("mpeg4"), tags={"LOCATION": text})
    meta = _extract(path)
    assert "gps" not in meta.fields
    assert any("ISO 6709" in problem for problem in meta.raw["problems"])


def test_pixel_limit_applies_to_video(videos: dict[str, Path]) -> None:
    with pytest.raises(BadInputError, match="64 × 48") as caught:
        _extract(videos["mp4"], MediaLimits(max_pixels=1_000))
    assert caught.value.code == "too-many-pixels"


def test_truncated_video_is_corrupt_or_partial(videos: dict[str, Path], tmp_path: Path) -> None:
    data = videos["mp4"].read_bytes()
    for cut in (100, len(data) // 3, len(data) - 100):
        path = tmp_path / f"cut{cut}.mp4"
        path.write_bytes(data[:cut])
        outcome = _outcome(path, "video/mp4")
        if isinstance(outcome, BadInputError):
            assert outcome.code == "corrupt-media"
        else:
            assert outcome.raw["format"]["media_type"] == "video/mp4"


def _outcome(path: Path, media_type: str) -> Metadata | BadInputError:
    try:
        return extract(path, media_type)
    except BadInputError as exc:
        return exc


def test_playlist_posing_as_video_is_never_followed(tmp_path: Path) -> None:
    """FFmpeg left to probe reads an HLS playlist and opens what it names; pinned, it cannot."""
    secret = tmp_path / "secret.ts"
    secret.write_bytes(b"\x47" * 188 * 10)
    playlist = tmp_path / "clip.mp4"
    playlist.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{secret}\n#EXT-X-ENDLIST\n")
    for media_type in ("video/mp4", "video/webm", "video/x-msvideo", "audio/mpeg"):
        with pytest.raises(BadInputError) as caught:
            extract(playlist, media_type)
        assert caught.value.code == "corrupt-media"
