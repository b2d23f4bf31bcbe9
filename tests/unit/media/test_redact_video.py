"""Redacted video copies: faces covered in every frame, carried over the frames the
detector misses, H.264 at the source's size and rate, no metadata, no audio unless asked,
bounded memory, and hostile files refused.

On the 3 s 720p clip below (eight labelled faces of 14–90 px, moving), every face is
covered in every one of the 75 frames.
"""

from __future__ import annotations

import subprocess
import tempfile
import tracemalloc
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_faces_scenes import Box, background, black_mask, covered_share, faces, paste

from sprava.errors import BadInputError, NotFoundError
from sprava.media.faces import (
    VIDEO_DETECTOR_SETTINGS,
    DetectorSettings,
    FaceDetector,
    ModelInfo,
)
from sprava.media.faces import (
    Box as FaceBox,
)
from sprava.media.limits import MediaLimits
from sprava.media.redact import RedactionReport, RedactionSettings, redact_video
from sprava.media.redact_video import ENCODERS, _encoder, frames_of

SOLID = RedactionSettings(mode="solid")
SECRETS = ["Interview W7", "Ivan Petrovich", "+53.9000+027.5667/", "Secret Phone Cam"]


@pytest.fixture(scope="module")
def video_detector() -> FaceDetector:
    return FaceDetector(VIDEO_DETECTOR_SETTINGS)


@pytest.fixture(scope="module")
def cheap_detector() -> FaceDetector:
    """The whole frame only: for tests about containers, not about finding faces."""
    return FaceDetector(DetectorSettings(tile_grid=(0, 0)))


@pytest.fixture
def quiet_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An output folder; afterwards the temp folder must be empty."""
    spool = tmp_path / "tmpdir"
    spool.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    monkeypatch.setenv("TMPDIR", str(spool))
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    yield out
    assert list(spool.iterdir()) == [], "something was written to the temp folder"


# --- clips ---------------------------------------------------------------------------------


@dataclass
class Mover:
    """One labelled face moving in a straight line, bouncing within [low, high] in x."""

    face: int
    size: float
    x: float
    y: float
    speed: float  # px per frame
    low: float
    high: float

    def at(self, index: int) -> tuple[float, float]:
        span = self.high - self.low
        raw = self.x - self.low + self.speed * index
        folded = abs((raw + span) % (2 * span) - span)
        return self.low + folded, self.y


@dataclass
class Scene:
    width: int
    height: int
    movers: list[Mover]
    seed: int = 0
    occlude: Callable[[int, np.ndarray, list[Box]], None] | None = None

    def frame(self, index: int) -> tuple[np.ndarray, list[Box]]:
        image = _background(self.width, self.height, self.seed).copy()
        cut = faces()
        boxes = []
        for m in self.movers:
            x, y = m.at(index)
            boxes.append(paste(image, cut[m.face], x, y, m.size))
        if self.occlude is not None:
            self.occlude(index, image, boxes)
        return image, boxes


@cache
def _background(width: int, height: int, seed: int) -> np.ndarray:
    return background(width, height, seed)


def write_video(path: Path, frames: Sequence[np.ndarray] | Iterator[np.ndarray], *,
                fps: int = 25, codec: str = "libx264", fmt: str | None = None,
                audio: str | None = None, tags: dict[str, str] | None = None,
                stream_tags: dict[str, str] | None = None, rotation: int = 0,
                options: dict[str, str] | None = None, seconds_of_audio: float = 1.0) -> Path:
    """Encode RGB frames (and optionally a tone) with PyAV."""
    import av

    with av.open(str(path), "w", format=fmt, options=options or {}) as out:
        if tags:
            out.metadata.update(tags)
        stream: Any = None
        sound: Any = None
        if audio:
            sound = out.add_stream(audio, rate=48_000)
        for image in frames:
            if stream is None:
                stream = out.add_stream(codec, rate=fps)
                stream.height, stream.width = image.shape[:2]
                stream.pix_fmt = "yuv420p" if image.shape[0] % 2 == 0 == image.shape[1] % 2 \
                    else "yuv444p"
                if codec == "libx264":
                    stream.options = {"crf": "16", "preset": "veryfast"}
                if stream_tags:
                    stream.metadata.update(stream_tags)
                if rotation:
                    stream.set_display_rotation(rotation)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
        if sound is not None:
            _tone(sound, out, seconds_of_audio)
    return path


def _tone(stream: Any, out: Any, seconds: float) -> None:
    import av

    samples = 1024
    fmt = "fltp" if stream.codec_context.name in ("aac", "libopus") else "s16"
    for n in range(int(seconds * 48_000 / samples)):
        t = (np.arange(samples) + n * samples) / 48_000
        wave = 0.3 * np.sin(2 * np.pi * 440 * t)
        data = (wave * 32767).astype(np.int16)[None] if fmt == "s16" else \
            wave.astype(np.float32)[None]
        frame = av.AudioFrame.from_ndarray(data, format=fmt, layout="mono")
        frame.sample_rate, frame.pts = 48_000, n * samples
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode(None):
        out.mux(packet)


def probe(path: Path) -> dict[str, Any]:
    import av

    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        return {
            "format": container.format.name,
            "metadata": dict(container.metadata),
            "video_metadata": dict(video.metadata) if video else {},
            "codec": video.codec_context.name if video else None,
            "size": (video.width, video.height) if video else None,
            "rate": video.average_rate if video else None,
            "pix_fmt": video.pix_fmt if video else None,
            "audio": [s.codec_context.name for s in container.streams.audio],
            "frames": sum(1 for _ in container.decode(video=0)) if video else 0,
        }


def coverage(scene: Scene, output: Path) -> np.ndarray:
    """Per frame and face: the share of the face's box painted black in the output."""
    shares = []
    for index, out in enumerate(frames_of(output)):
        source, boxes = scene.frame(index)
        black = black_mask(source, out)
        shares.append([covered_share(black, box) for box in boxes])
    return np.array(shares)


class BlindDetector:
    """The real detector, except that it sees nothing in the frames listed (an in-memory
    stand-in for a detector that misses a face: motion blur, a turned head)."""

    def __init__(self, real: FaceDetector, blind: set[int]) -> None:
        self.real, self.blind, self.calls = real, blind, 0

    @property
    def info(self) -> ModelInfo:
        return self.real.info

    @property
    def settings(self) -> DetectorSettings:
        return self.real.settings

    def detect(self, rgb: np.ndarray, threshold: float | None = None, *,
               tiles: Sequence[int] | None = None) -> list[FaceBox]:
        index, self.calls = self.calls, self.calls + 1
        return [] if index in self.blind else self.real.detect(rgb, threshold, tiles=tiles)

    def tile_count(self, width: int, height: int) -> int:
        return self.real.tile_count(width, height)


# --- the main clip: 720p, 3 s, 25 fps ---------------------------------------------------------


def lanes_720p() -> Scene:
    """Eight labelled faces of 14–90 px, each in its own lane, so none hides another."""
    sizes = [14, 16, 18, 20, 24, 36, 60, 90]
    movers = []
    for i, size in enumerate(sizes):
        row, half = divmod(i, 2)
        low = 40.0 + half * 640
        movers.append(Mover(face=(i * 5) % 43, size=size, x=low + 30 * i, y=20.0 + row * 180,
                            speed=1.0 + 0.6 * i, low=low, high=low + 600 - 2 * size))
    return Scene(1280, 720, movers, seed=11)


@dataclass
class Done:
    scene: Scene
    source: Path
    output: Path
    report: RedactionReport


@pytest.fixture(scope="module")
def redacted_720p(tmp_path_factory: pytest.TempPathFactory,
                  video_detector: FaceDetector) -> Done:
    folder = tmp_path_factory.mktemp("clip720")
    scene = lanes_720p()
    source = write_video(folder / "clip.mp4", (scene.frame(i)[0] for i in range(75)),
                         tags={"title": "Interview W7", "artist": "Ivan Petrovich",
                               "location": "+53.9000+027.5667/"},
                         stream_tags={"handler_name": "Secret Phone Cam"},
                         options={"movflags": "use_metadata_tags"})
    output = folder / "out" / "redacted.mp4"
    output.parent.mkdir()
    report = redact_video(source, output, SOLID, detector=video_detector)
    return Done(scene, source, output, report)


def test_the_720p_clip_comes_out_as_h264_mp4_of_the_same_size_rate_and_length(
    redacted_720p: Done,
) -> None:
    info = probe(redacted_720p.output)
    assert info["codec"] == "h264"
    assert "mp4" in info["format"]
    assert info["size"] == (1280, 720)
    assert info["rate"] == 25
    assert info["frames"] == 75
    assert info["pix_fmt"] == "yuv420p"
    report = redacted_720p.report
    assert (report.media_type, report.width, report.height, report.frames) == (
        "video/mp4", 1280, 720, 75)
    assert report.frame_rate == 25.0
    assert report.video_codec == "libx264"
    assert len(report.faces_per_frame) == 75
    assert report.faces_total == sum(
        report.faces_per_frame)
    assert report.carried_total > 0
    assert report.notes == ()
    assert report.audio == "none"
    assert report.settings["encoder"] == "libx264"
    assert report.settings["tiles_per_frame"] == 1  # six tiles, one per frame, k = 5
    assert report.settings["detector"]["tile_grid"] == [3, 2]
    assert sorted(p.name for p in redacted_720p.output.parent.iterdir()) == ["redacted.mp4"]


def test_every_face_is_covered_in_every_frame(redacted_720p: Done) -> None:
    shares = coverage(redacted_720p.scene, redacted_720p.output)
    assert shares.shape == (75, 8)
    missed = [(f, i, round(float(shares[f, i]), 2)) for f, i in zip(*np.nonzero(shares < 0.8),
                                                                     strict=True)]
    assert missed == []


def test_far_from_faces_the_picture_is_the_source(redacted_720p: Done) -> None:
    for index, (before, after) in enumerate(zip(frames_of(redacted_720p.source),
                                                frames_of(redacted_720p.output), strict=True)):
        if index % 15:
            continue
        _, boxes = redacted_720p.scene.frame(index)
        far = np.ones(before.shape[:2], bool)
        for x0, y0, x1, y1 in boxes:  # keep away from the faces and their grown boxes
            w, h = x1 - x0, y1 - y0
            far[max(0, int(y0 - h)):int(y1 + h), max(0, int(x0 - w)):int(x1 + w)] = False
        assert np.abs(before.astype(int) - after)[far].mean() < 3


def test_no_metadata_survives(redacted_720p: Done) -> None:
    source = probe(redacted_720p.source)
    assert source["metadata"]["title"] == "Interview W7"  # the test clip really has them
    info = probe(redacted_720p.output)
    assert set(info["metadata"]) <= {"major_brand", "minor_version", "compatible_brands"}
    assert set(info["video_metadata"]) <= {"language", "handler_name", "vendor_id"}
    assert info["video_metadata"].get("handler_name", "VideoHandler") == "VideoHandler"
    data = redacted_720p.output.read_bytes()
    for secret in SECRETS:
        assert secret.encode() not in data
    assert b"Lavf" not in data  # not even the muxer's name and version


# --- carrying boxes across frames -------------------------------------------------------------


def one_face(speed: float, size: float = 48, frames: int = 40) -> Scene:
    return Scene(640, 360, [Mover(face=12, size=size, x=40, y=140, speed=speed, low=20,
                                  high=560)], seed=2)


@pytest.mark.parametrize(("speed", "blind", "check"), [
    (2.0, set(range(10, 14)), range(10, 14)),  # a face missed for four frames
    (13.3, set(range(10, 15)), range(10, 15)),  # a fast one: only interpolation covers it
])
def test_a_face_the_detector_misses_is_covered_from_the_neighbouring_frames(
    tmp_path: Path, quiet_tmp: Path, video_detector: FaceDetector,
    cheap_detector: FaceDetector, speed: float, blind: set[int], check: range,
) -> None:
    scene = one_face(speed)
    source = write_video(tmp_path / "one.mp4", [scene.frame(i)[0] for i in range(30)])
    dst = quiet_tmp / "out.mp4"
    blinded = BlindDetector(video_detector, blind)
    report = redact_video(source, dst, SOLID, detector=blinded)
    assert blinded.calls == 30
    assert [report.faces_per_frame[i] for i in check] == [0] * len(check)
    shares = coverage(scene, dst)[:, 0]
    assert (shares >= 0.8).all(), shares.round(2).tolist()
    # Without carrying, the same blindness leaves the face visible in those frames (any
    # detector that finds this 48 px face shows it; the whole-frame one is quickest).
    dst.unlink()
    redact_video(source, dst, RedactionSettings(mode="solid", carry_frames=0),
                 detector=BlindDetector(cheap_detector, blind))
    shares = coverage(scene, dst)[:, 0]
    assert (shares[list(check)] < 0.5).all()
    dst.unlink()


def test_a_face_mostly_hidden_in_one_frame_is_still_covered(
    tmp_path: Path, quiet_tmp: Path, video_detector: FaceDetector,
) -> None:
    """A placard in front of the face in frame 20 leaves only the chin: the detector (which
    still finds faces 70 % hidden) sees nothing there, and the chin must still be obscured."""
    def placard(index: int, image: np.ndarray, boxes: list[Box]) -> None:
        if index == 20:
            x0, y0, x1, y1 = boxes[0]
            image[max(0, int(y0) - 30):int(y0 + 0.8 * (y1 - y0)),
                  int(x0) - 15:int(x1) + 15] = (150, 120, 100)

    scene = one_face(1.5, size=64)
    scene.occlude = placard
    frame, boxes = scene.frame(20)
    x0, y0, x1, y1 = boxes[0]
    visible = (x0, y0 + 0.8 * (y1 - y0) + 1, x1, y1)  # the chin
    alone = video_detector.detect(frame, 0.2)  # every tile: more than a video frame gets
    assert all(covered_share(_mask(frame.shape, b), visible) < 0.5 for b in alone)
    source = write_video(tmp_path / "hand.mp4", [scene.frame(i)[0] for i in range(40)])
    dst = quiet_tmp / "out.mp4"
    redact_video(source, dst, SOLID, detector=video_detector)
    out = list(frames_of(dst))[20]
    assert covered_share(black_mask(frame, out), visible) >= 0.8


def _mask(shape: tuple[int, ...], box: FaceBox) -> np.ndarray:
    mask = np.zeros(shape[:2], bool)
    grown = box.scaled(1.3)
    mask[max(0, int(grown.y0)):max(0, int(grown.y1)),
         max(0, int(grown.x0)):max(0, int(grown.x1))] = True
    return mask


def test_memory_holds_a_window_of_frames_not_the_video(
    tmp_path: Path, quiet_tmp: Path, video_detector: FaceDetector,
) -> None:
    scene = one_face(3.0)
    source = write_video(tmp_path / "long.mp4", [scene.frame(i)[0] for i in range(60)])
    whole = 60 * 640 * 360 * 3
    tracemalloc.start()
    try:
        redact_video(source, quiet_tmp / "out.mp4", RedactionSettings(),
                     detector=video_detector)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < whole / 2, f"peak {peak / 2**20:.1f} MiB for a {whole / 2**20:.1f} MiB video"


# --- containers, audio, rotation ----------------------------------------------------------------


def tiny(frames: int = 12, width: int = 160, height: int = 120) -> list[np.ndarray]:
    return [background(width, height, seed=i) for i in range(frames)]


@pytest.mark.parametrize(("keep", "codec", "fmt", "expected", "audio"), [
    (False, "aac", "mp4", [], "dropped"),
    (True, "aac", "mp4", ["aac"], "copied"),
    (True, "pcm_s16le", "mov", ["aac"], "transcoded"),
])
def test_audio_is_dropped_unless_asked_for(
    tmp_path: Path, quiet_tmp: Path, cheap_detector: FaceDetector, keep: bool, codec: str,
    fmt: str, expected: list[str], audio: str,
) -> None:
    import av

    source = write_video(tmp_path / f"talk.{fmt}", tiny(25), audio=codec, fmt=fmt)
    dst = quiet_tmp / "out.mp4"
    report = redact_video(source, dst, RedactionSettings(keep_audio=keep),
                          detector=cheap_detector)
    info = probe(dst)
    assert info["audio"] == expected
    assert report.audio == audio
    if expected:
        with av.open(str(dst)) as container:
            played = sum(f.samples for f in container.decode(audio=0)) / 48_000
        assert played == pytest.approx(1.0, abs=0.1)


def test_display_rotation_is_applied_like_ffmpeg_does(
    tmp_path: Path, quiet_tmp: Path, cheap_detector: FaceDetector,
) -> None:
    """A phone held upright stores sideways frames and a display matrix; players (and
    ffmpeg) rotate them. The copy carries no matrix, so its pixels must be upright."""
    import imageio_ffmpeg

    stored = tiny(6, 320, 240)
    for image in stored:
        image[:40, :80] = (250, 0, 0)  # a red corner shows which way is up
    source = write_video(tmp_path / "phone.mp4", stored, rotation=-90)
    dst = quiet_tmp / "out.mp4"
    report = redact_video(source, dst, RedactionSettings(), detector=cheap_detector)
    assert (report.width, report.height) == (240, 320)
    raw = subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-i", str(source),
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True).stdout
    ffmpeg_upright = np.frombuffer(raw, np.uint8).reshape(320, 240, 3)
    ours = next(frames_of(dst))
    assert ours.shape == (320, 240, 3)
    assert np.abs(ours.astype(int) - ffmpeg_upright).mean() < 4


def test_odd_sizes_keep_their_exact_resolution(
    tmp_path: Path, quiet_tmp: Path, cheap_detector: FaceDetector,
) -> None:
    source = write_video(tmp_path / "odd.mkv", tiny(5, 161, 121), fmt="matroska")
    dst = quiet_tmp / "out.mp4"
    report = redact_video(source, dst, RedactionSettings(), detector=cheap_detector)
    info = probe(dst)
    assert info["size"] == (161, 121) == (report.width, report.height)
    assert info["codec"] == "h264"
    assert info["frames"] == 5


def test_this_pyav_build_encodes_h264() -> None:
    import av

    assert "libx264" in av.codecs_available
    assert _encoder() == "libx264" == ENCODERS[0]


# --- hostile input ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("small")
    return write_video(folder / "small.mp4", tiny(50), options={"movflags": "+faststart"})


def _cut(data: bytes) -> bytes:
    return data[: len(data) * 6 // 10]


@pytest.mark.parametrize(("make", "code"), [
    (lambda clip: _cut(clip.read_bytes()), "corrupt-media"),  # index at the start, cut
    (lambda clip: b"", "corrupt-media"),
    (lambda clip: b"\x00\x00\x00\x18ftypisom" + bytes(range(256)) * 8, "corrupt-media"),
    (lambda clip: np.random.default_rng(1).bytes(5000), "corrupt-media"),
], ids=["truncated", "empty", "fake-mp4", "noise"])
def test_broken_files_are_refused_and_leave_nothing(
    small_clip: Path, tmp_path: Path, quiet_tmp: Path, cheap_detector: FaceDetector,
    make: Callable[[Path], bytes], code: str,
) -> None:
    src = tmp_path / "broken.mp4"
    src.write_bytes(make(small_clip))
    with pytest.raises(BadInputError) as caught:
        redact_video(src, quiet_tmp / "out.mp4", RedactionSettings(), detector=cheap_detector)
    assert caught.value.code == code
    assert list(quiet_tmp.iterdir()) == []


def test_a_truncated_file_with_its_index_at_the_end_is_refused(
    tmp_path: Path, quiet_tmp: Path, cheap_detector: FaceDetector,
) -> None:
    whole = write_video(tmp_path / "whole.mp4", tiny(20))
    src = tmp_path / "cut.mp4"
    src.write_bytes(_cut(whole.read_bytes()))
    with pytest.raises(BadInputError) as caught:
        redact_video(src, quiet_tmp / "out.mp4", RedactionSettings(), detector=cheap_detector)
    assert caught.value.code == "corrupt-media"
    assert list(quiet_tmp.iterdir()) == []


@pytest.mark.parametrize(("limits", "code"), [
    (MediaLimits(max_pixels=160 * 120 - 1), "too-many-pixels"),
    (MediaLimits(max_video_seconds=1.0), "video-too-long"),
    (MediaLimits(max_packets=10), "too-many-packets"),
])
def test_limits_are_enforced_before_any_face_is_searched(
    small_clip: Path, quiet_tmp: Path, cheap_detector: FaceDetector, limits: MediaLimits,
    code: str,
) -> None:
    counting = BlindDetector(cheap_detector, set())
    with pytest.raises(BadInputError) as caught:
        redact_video(small_clip, quiet_tmp / "out.mp4", RedactionSettings(), limits,
                     detector=counting)
    assert caught.value.code == code
    if code != "too-many-packets":
        assert counting.calls == 0  # refused from the header
    assert list(quiet_tmp.iterdir()) == []


def test_a_file_without_video_is_refused(
    tmp_path: Path, quiet_tmp: Path, cheap_detector: FaceDetector,
) -> None:
    import av

    src = tmp_path / "voice.m4a"
    with av.open(str(src), "w", format="mp4") as out:
        _tone(out.add_stream("aac", rate=48_000), out, 0.5)
    with pytest.raises(BadInputError) as caught:
        redact_video(src, quiet_tmp / "out.mp4", RedactionSettings(), detector=cheap_detector)
    assert caught.value.code == "no-video-stream"


def test_the_original_is_never_overwritten_and_missing_files_are_named(
    small_clip: Path, tmp_path: Path, cheap_detector: FaceDetector,
) -> None:
    before = small_clip.read_bytes()
    with pytest.raises(BadInputError) as caught:
        redact_video(small_clip, small_clip, RedactionSettings(), detector=cheap_detector)
    assert caught.value.code == "same-file"
    assert small_clip.read_bytes() == before
    with pytest.raises(NotFoundError) as missing:
        redact_video(tmp_path / "nope.mp4", tmp_path / "o.mp4", RedactionSettings(),
                     detector=cheap_detector)
    assert missing.value.code == "media-not-found"
