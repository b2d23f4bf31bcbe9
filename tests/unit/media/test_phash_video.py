"""Frame-sampled PDQ of video: the right frames, by seeking, within the budgets.

Videos are made here with PyAV so that their content is known: every second of the clip
shows its own blocky picture, so each sampled hash can be traced to the second it came
from. Hostile shapes: one keyframe for thousands of frames (seeking cannot help),
thousands of intra frames (seeking must be used), playlists that point at other files.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import av
import numpy as np
import pdqhash
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits
from sprava.media.phash import MATCH_DISTANCE, FrameHash, hamming, pdq_video

FPS = 30
SECONDS = 10


def _encode(path: Path, frames: Iterable[np.ndarray], *, codec: str, rate: int,
            options: dict[str, str] | None = None, container: str | None = None) -> Path:
    with av.open(str(path), "w", format=container) as out:
        stream = None
        for rgb in frames:
            if stream is None:
                stream = out.add_stream(codec, rate=rate, options=options or {})
                stream.height, stream.width = rgb.shape[:2]
                stream.pix_fmt = "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        assert stream is not None
        for packet in stream.encode():
            out.mux(packet)
    return path


def _picture(second: int) -> np.ndarray:
    """A 320 × 240 picture of 10 × 8 random blocks, different for every second."""
    blocks = np.random.default_rng(second).integers(0, 256, (8, 10, 3), dtype=np.uint8)
    return np.kron(blocks, np.ones((30, 32, 1), dtype=np.uint8))


def _pdq(rgb: np.ndarray) -> str:
    bits, _quality = pdqhash.compute(rgb)
    return np.packbits(bits.astype(np.uint8)).tobytes().hex()


def _tiny(count: int) -> Iterable[np.ndarray]:
    for i in range(count):
        frame = np.zeros((16, 16, 3), dtype=np.uint8)
        frame[:, : i % 16] = (i * 13) % 256
        yield frame


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("videos")
    clip = (_picture(s) for s in range(SECONDS) for _ in range(FPS))
    return {
        # a keyframe every second, like a phone's
        "clip": _encode(folder / "clip.mp4", clip, codec="mpeg4", rate=FPS,
                        options={"g": str(FPS), "qscale": "2"}),
        # 10,000 frames after a single keyframe: seeking always lands at the start
        "one-keyframe": _encode(
            folder / "one-keyframe.mp4", _tiny(10_000), codec="libx264", rate=1000,
            options={"preset": "ultrafast",
                     "x264-params": "keyint=1000000:min-keyint=1000000:scenecut=0"}),
        # 20,000 frames, every one a keyframe: seeking reaches any second at once
        "intra": _encode(folder / "intra.mp4", _tiny(20_000), codec="mpeg4", rate=1000,
                         options={"g": "1"}),
    }


@pytest.fixture(scope="module")
def expected() -> list[str]:
    return [_pdq(_picture(s)) for s in range(SECONDS)]


def _second_shown(hashes: list[FrameHash], expected: list[str]) -> list[int]:
    """For each frame hash, the one second whose picture it matches."""
    shown = []
    for frame in hashes:
        near = [s for s, h in enumerate(expected) if hamming(frame.hex, h) <= MATCH_DISTANCE]
        assert len(near) == 1, (frame, near)
        shown.append(near[0])
    return shown


def test_one_frame_a_second(videos: dict[str, Path], expected: list[str]) -> None:
    hashes = pdq_video(videos["clip"])
    assert [h.second for h in hashes] == [float(s) for s in range(SECONDS)]
    assert _second_shown(hashes, expected) == list(range(SECONDS))
    assert all(h.quality == 100 for h in hashes)


def test_long_video_spreads_its_samples(videos: dict[str, Path], expected: list[str]) -> None:
    hashes = pdq_video(videos["clip"], MediaLimits(max_frames_sampled=4))
    assert [h.second for h in hashes] == [0.0, 2.5, 5.0, 7.5]
    assert _second_shown(hashes, expected) == [0, 2, 5, 7]


def test_declared_duration_over_the_limit_is_refused(videos: dict[str, Path]) -> None:
    with pytest.raises(BadInputError, match="lasts 10 s") as caught:
        pdq_video(videos["clip"], MediaLimits(max_video_seconds=5))
    assert caught.value.code == "video-too-long"


def test_frame_size_over_the_limit_is_refused(videos: dict[str, Path]) -> None:
    with pytest.raises(BadInputError) as caught:
        pdq_video(videos["clip"], MediaLimits(max_pixels=320 * 240 - 1))
    assert caught.value.code == "too-many-pixels"


def test_single_keyframe_is_decoded_straight_through(videos: dict[str, Path]) -> None:
    start = time.perf_counter()
    hashes = pdq_video(videos["one-keyframe"])
    assert time.perf_counter() - start < 5
    assert [h.second for h in hashes] == [float(s) for s in range(10)]


def test_packet_budget_stops_and_keeps_what_was_hashed(videos: dict[str, Path]) -> None:
    """1 packet for 0 s, 1,000 for 1 s, then the seek to 2 s lands back on the keyframe
    (2,000 more, and no more seeking): 3 s would need a 4,004th packet."""
    hashes = pdq_video(videos["one-keyframe"], MediaLimits(max_packets=3_500))
    assert [h.second for h in hashes] == [0.0, 1.0, 2.0]


def test_intra_video_is_sampled_by_seeking(videos: dict[str, Path]) -> None:
    """Walking to 19 s would take 19,000 packets; seeking needs about one per sample."""
    hashes = pdq_video(videos["intra"], MediaLimits(max_packets=200))
    assert [h.second for h in hashes] == [float(s) for s in range(20)]


@pytest.mark.parametrize("limits", [MediaLimits(max_packets=0), MediaLimits(max_seconds=0)])
def test_budget_gone_before_the_first_frame(videos: dict[str, Path],
                                            limits: MediaLimits) -> None:
    with pytest.raises(BadInputError, match="before a single frame") as caught:
        pdq_video(videos["clip"], limits)
    assert caught.value.code == "analysis-budget"


def test_audio_only_file_has_no_video(tmp_path: Path) -> None:
    path = tmp_path / "voice.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("aac", rate=8000)
        for i in range(10):
            frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), dtype=np.float32),
                                               format="fltp", layout="mono")
            frame.sample_rate, frame.pts = 8000, i * 1024
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    with pytest.raises(BadInputError) as caught:
        pdq_video(path)
    assert caught.value.code == "no-video-stream"


@pytest.mark.parametrize("kind", ["hls", "concat"])
def test_playlists_may_not_pull_in_other_files(tmp_path: Path, kind: str) -> None:
    """FFmpeg left to itself follows both to ``segment.ts``; we refuse the container."""
    _encode(tmp_path / "segment.ts", (_picture(s) for s in range(3) for _ in range(FPS)),
            codec="mpeg4", rate=FPS, container="mpegts")
    path = tmp_path / ("list.m3u8" if kind == "hls" else "list.txt")
    path.write_text("#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3,\nsegment.ts\n#EXT-X-ENDLIST\n"
                    if kind == "hls" else "ffconcat version 1.0\nfile 'segment.ts'\n")
    with av.open(str(path)) as unguarded:
        assert unguarded.format.name == kind
        assert sum(1 for _ in unguarded.decode(video=0)) == 3 * FPS
    with pytest.raises(BadInputError) as caught:
        pdq_video(path)
    assert caught.value.code == "corrupt-media"


def test_mpeg_ts_is_accepted(tmp_path: Path, expected: list[str]) -> None:
    path = _encode(tmp_path / "clip.ts", (_picture(s) for s in range(3) for _ in range(FPS)),
                   codec="mpeg4", rate=FPS, container="mpegts")
    hashes = pdq_video(path)
    assert [round(h.second) for h in hashes] == [0, 1, 2]
    assert _second_shown(hashes, expected) == [0, 1, 2]


def test_truncated_mp4_is_corrupt(tmp_path: Path, videos: dict[str, Path]) -> None:
    data = videos["clip"].read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: len(data) // 2])  # the index (moov) is written last
    with pytest.raises(BadInputError) as caught:
        pdq_video(path)
    assert caught.value.code == "corrupt-media"


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cut=st.floats(0, 1), flips=st.lists(st.floats(0, 1, exclude_max=True), max_size=6))
def test_fuzzed_video_hashes_or_refuses(tmp_path: Path, videos: dict[str, Path], cut: float,
                                        flips: list[float]) -> None:
    data = bytearray(videos["clip"].read_bytes())
    for where in flips:
        data[int(where * len(data))] ^= 0xFF
    path = tmp_path / "fuzz.mp4"
    path.write_bytes(bytes(data[: max(1, int(len(data) * cut))]))
    got: list[FrameHash] | BadInputError
    try:
        got = pdq_video(path)
    except BadInputError as exc:
        got = exc
    if isinstance(got, BadInputError):
        assert got.code in {"corrupt-media", "no-video-stream", "too-many-pixels",
                            "video-too-long", "analysis-budget"}
    else:
        assert all(len(h.hex) == 64 and 0 <= h.quality <= 100 for h in got)


@pytest.mark.slow
def test_a_million_tiny_frames_stay_bounded(tmp_path: Path) -> None:
    """One keyframe then a million frames: read straight through, within the packet budget.

    About 20 µs a frame here, so well under the default 600 s budget.
    """
    path = _encode(tmp_path / "million.mp4", _tiny(1_000_000), codec="libx264", rate=1000,
                   options={"preset": "ultrafast",
                            "x264-params": "keyint=1000000:min-keyint=1000000:scenecut=0"})
    start = time.perf_counter()
    hashes = pdq_video(path)
    elapsed = time.perf_counter() - start
    assert len(hashes) == MediaLimits().max_frames_sampled
    assert elapsed < 120, elapsed
    start = time.perf_counter()
    partial = pdq_video(path, MediaLimits(max_packets=100_000))
    assert time.perf_counter() - start < 10
    assert 0 < len(partial) < len(hashes)
