"""Video redaction: every frame decoded, searched, obscured and re-encoded, in bounded memory.

Frames stream through a short window (``carry_frames + 1`` decoded frames at most), so a
six-hour video costs the memory of a handful of frames. Each frame is searched by the
detector's whole-frame pass plus one (or more) of its tiles in turn; a face's box is
carried to the ``carry_frames`` frames before and after it, and where the same face is
seen on both sides of a frame it is also obscured at the position in between. The
detector missing a face in one frame (motion blur, a head turning, a hand in front) then
leaves no frame in which it is visible.

Faces are linked across frames by box position and size only: no appearance features,
nothing that could tell one person from another.

The output is H.264 in MP4 (libx264) at the source's resolution and frame rate, with the
source's timestamps; display rotation is applied to the pixels, container and stream
metadata are not copied, audio is dropped unless asked for.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from sprava.errors import BadInputError, NotFoundError
from sprava.media.faces import (
    VIDEO_DETECTOR_SETTINGS,
    Box,
    Detector,
    FaceDetector,
    merge_boxes,
)
from sprava.media.limits import MediaLimits
from sprava.media.redact import (
    RedactionReport,
    RedactionSettings,
    corrupt,
    obscure,
    recorded_settings,
    refuse_same_file,
    report_for,
    staged_output,
    too_many_pixels,
)

if TYPE_CHECKING:
    import av

# Encoders in order of preference: H.264 plays everywhere; MPEG-4 Part 2 is the fallback
# of a PyAV build without any H.264 encoder, and the report says so.
ENCODERS = ("libx264", "libopenh264", "mpeg4")
_X264_OPTIONS = {"preset": "veryfast", "crf": "20"}
_MP4_AUDIO = frozenset({"aac", "mp3", "alac", "opus", "flac", "ac3", "eac3"})
_MAX_EARLY_AUDIO = 10_000  # audio packets held until the first video frame decodes
_DEFAULT_RATE = Fraction(25)
_SAME_PLACE = 0.6  # IoU above which boxes are obscured as one (their union)


def redact_video(src: Path, dst: Path, settings: RedactionSettings,
                 limits: MediaLimits | None = None, *,
                 detector: Detector | None = None,
                 progress: Callable[[int, int | None], None] | None = None,
                 ) -> RedactionReport:
    """Write ``dst``: an MP4 of ``src`` with every face obscured in every frame.

    ``progress(frames_done, frames_expected_or_None)`` is called after each frame.

    Raises ``BadInputError`` with code ``too-many-pixels`` (from the header, or a frame
    that grows later), ``video-too-long`` (over ``limits.max_video_seconds``),
    ``too-many-packets``, ``no-video-stream``, ``corrupt-media`` or ``same-file``;
    ``NotFoundError`` if ``src`` or the output folder does not exist. On any error no
    file is left at ``dst``.
    """
    import av

    limits = limits or MediaLimits()
    refuse_same_file(src, dst)
    detector = detector or FaceDetector(VIDEO_DETECTOR_SETTINGS)
    try:
        container = av.open(str(src), "r", metadata_errors="ignore")
    except FileNotFoundError as exc:
        raise NotFoundError(f"{src} does not exist", code="media-not-found") from exc
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise corrupt(src, exc) from exc
    with container:
        video = _video_stream(src, container)
        _check_header(src, container, video, limits)
        job = _Job(src, settings, limits, detector, container, video, progress)
        with staged_output(dst) as temp:
            try:
                job.run(temp)
            except av.FFmpegError as exc:
                raise corrupt(src, exc) from exc
    return job.report()


def _video_stream(src: Path, container: av.container.InputContainer) -> Any:
    if not container.streams.video:
        raise BadInputError(f"{src.name} has no video stream", code="no-video-stream")
    return container.streams.video[0]


def _check_header(src: Path, container: av.container.InputContainer, video: Any,
                  limits: MediaLimits) -> None:
    """Refuse from the header alone what we will not decode."""
    width, height = video.codec_context.width, video.codec_context.height
    if width * height > limits.max_pixels:
        raise too_many_pixels(src, width, height, limits)
    if container.duration is not None:
        seconds = container.duration / 1_000_000
        if seconds > limits.max_video_seconds:
            raise _too_long(src, seconds, limits)
    _check_not_truncated(src, container, limits)


def _check_not_truncated(src: Path, container: av.container.InputContainer,
                         limits: MediaLimits) -> None:
    """Refuse a file whose own index points past its end (an interrupted copy or upload).

    FFmpeg would decode such a file up to the cut and stop without an error, and the
    redacted copy would silently lack the end of the recording.
    """
    size = src.stat().st_size
    for stream in container.streams:
        entries = stream.index_entries
        if entries is None or len(entries) > limits.max_packets:
            continue
        end = max((e.pos + e.size for e in entries if e.pos >= 0), default=0)
        if end > size:
            raise corrupt(src, f"truncated: its index needs {end:,} bytes, the file has "
                               f"{size:,}")


def _too_long(src: Path, seconds: float, limits: MediaLimits) -> BadInputError:
    return BadInputError(f"{src.name} lasts {seconds:,.0f} s, more than the "
                         f"{limits.max_video_seconds:,.0f} s allowed", code="video-too-long")


@dataclass
class _Sighting:
    """The boxes (already grown by ``box_scale``) found in one frame, with track ids."""

    index: int
    boxes: np.ndarray  # N × 4: x0, y0, x1, y1
    tracks: np.ndarray  # N track ids


@dataclass
class _Pending:
    index: int
    rgb: np.ndarray
    pts: int


class _Tracker:
    """Links boxes across frames by position and size alone, so that a face seen before
    and after a frame can be obscured where it was in between.

    Greedy: the closest pairs are linked first; a pair is linked only if the centres are
    closer than a face's size (more for longer gaps) and the sizes differ by at most 2×.
    A wrong link costs an extra obscured patch, never an uncovered face, because every
    box is obscured where it was seen regardless.
    """

    def __init__(self, horizon: int) -> None:
        self._horizon = horizon
        self._last: dict[int, tuple[int, np.ndarray]] = {}
        self._next = 0

    def assign(self, index: int, boxes: np.ndarray) -> np.ndarray:
        self._last = {k: v for k, v in self._last.items() if index - v[0] <= self._horizon}
        ids = np.full(len(boxes), -1, np.int64)
        if self._last and len(boxes):
            keys = list(self._last)
            prev = np.stack([self._last[k][1] for k in keys])
            gaps = np.array([index - self._last[k][0] for k in keys], np.float64)
            cost = _link_cost(prev, boxes, gaps)
            taken = np.zeros(len(keys), bool)
            for flat in np.argsort(cost, axis=None):
                row, col = divmod(int(flat), cost.shape[1])
                if not np.isfinite(cost[row, col]):
                    break
                if taken[row] or ids[col] >= 0:
                    continue
                ids[col], taken[row] = keys[row], True
        for col in np.nonzero(ids < 0)[0]:
            ids[col], self._next = self._next, self._next + 1
        for col, box in enumerate(boxes):
            self._last[int(ids[col])] = (index, box)
        return ids


def _link_cost(prev: np.ndarray, boxes: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Centre distance in face sizes, or infinity where a link is implausible."""
    def centre(b: np.ndarray) -> np.ndarray:
        return np.asarray((b[:, :2] + b[:, 2:4]) / 2)

    def size(b: np.ndarray) -> np.ndarray:
        return np.asarray(np.maximum(np.maximum(b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]), 1.0))

    ps, bs = size(prev)[:, None], size(boxes)[None, :]
    dist = np.linalg.norm(centre(prev)[:, None, :] - centre(boxes)[None, :, :], axis=2)
    dist = dist / np.maximum(ps, bs)
    ratio = np.maximum(ps / bs, bs / ps)
    limit = np.minimum(1.5, 0.5 + 0.25 * gaps)[:, None]
    return np.where((dist <= limit) & (ratio <= 2.0), dist, np.inf)


def regions_for(index: int, window: list[_Sighting], carry: int) -> tuple[np.ndarray, int]:
    """The regions to obscure in frame ``index`` and how many came from other frames.

    Every box seen within ``carry`` frames, plus, for each face seen both before and
    after this frame (and not in it), its box interpolated to this frame.
    """
    near = [s for s in window if abs(s.index - index) <= carry]
    parts = [s.boxes for s in near]
    before: dict[int, tuple[int, np.ndarray]] = {}
    after: dict[int, tuple[int, np.ndarray]] = {}
    for sighting in near:
        for track, box in zip(sighting.tracks.tolist(), sighting.boxes, strict=True):
            if sighting.index <= index:
                before[track] = (sighting.index, box)
            elif track not in after:
                after[track] = (sighting.index, box)
    between = []
    for track, (s, first) in before.items():
        if s < index and track in after:
            u, second = after[track]
            between.append(first + (second - first) * ((index - s) / (u - s)))
    if between:
        parts.append(np.asarray(between))
    regions = np.concatenate(parts) if parts else np.empty((0, 4))
    own = sum(len(s.boxes) for s in near if s.index == index)
    return regions, len(regions) - own


@dataclass
class _Output:
    container: Any
    video: Any
    audio: Any | None
    codec: str
    transcode_audio: bool


@dataclass
class _Job:
    """One redaction: decoding, the sliding window, encoding, and the counts."""

    src: Path
    settings: RedactionSettings
    limits: MediaLimits
    detector: Detector
    container: Any
    video: Any
    progress: Callable[[int, int | None], None] | None
    faces: list[int] = field(default_factory=list)
    carried: int = 0
    written: int = 0
    width: int = 0
    height: int = 0
    rate: Fraction = _DEFAULT_RATE
    tiles_per_frame: int = 0
    audio_mode: str = "none"
    notes: list[str] = field(default_factory=list)
    _out: _Output | None = None
    _pending: deque[_Pending] = field(default_factory=deque)
    _window: deque[_Sighting] = field(default_factory=deque)
    _early_audio: list[Any] = field(default_factory=list)
    _last_pts: int | None = None
    _rotation: int = 0

    def __post_init__(self) -> None:
        self._tracker = _Tracker(horizon=2 * self.settings.carry_frames + 1)
        self.rate = self.video.average_rate or self.video.guessed_rate or _DEFAULT_RATE
        audio = self.container.streams.audio
        self._audio_in = audio[0] if audio else None
        if self._audio_in is not None:
            self.audio_mode = "dropped"

    # -- the loop -----------------------------------------------------------------------

    def run(self, temp: Path) -> None:
        self.video.thread_type = "AUTO"
        streams = [self.video]
        if self.settings.keep_audio and self._audio_in is not None:
            streams.append(self._audio_in)
        packets = 0
        try:
            for packet in self.container.demux(*streams):
                packets += 1
                if packets > self.limits.max_packets:
                    raise BadInputError(f"{self.src.name} has more than "
                                        f"{self.limits.max_packets:,} packets",
                                        code="too-many-packets")
                if packet.stream.type == "audio":
                    self._audio_packet(packet)
                    continue
                for frame in packet.decode():
                    self._push(frame, temp)
            if not self.faces:
                raise corrupt(self.src, "no video frame could be decoded")
            while self._pending:
                self._emit()
            self._finish()
        finally:
            if self._out is not None:
                self._out.container.close()

    def _push(self, frame: Any, temp: Path) -> None:
        if frame.width * frame.height > self.limits.max_pixels:
            raise too_many_pixels(self.src, frame.width, frame.height, self.limits)
        if frame.time is not None and frame.time > self.limits.max_video_seconds:
            raise _too_long(self.src, frame.time, self.limits)
        if self._out is None:
            self._start(frame, temp)
        rgb = self._upright(frame)
        index = len(self.faces)
        boxes = self._detect(rgb, index)
        self.faces.append(len(boxes))
        self._window.append(_Sighting(index, boxes, self._tracker.assign(index, boxes)))
        self._pending.append(_Pending(index, rgb, self._next_pts(frame, index)))
        if len(self._pending) > self.settings.carry_frames:
            self._emit()

    def _detect(self, rgb: np.ndarray, index: int) -> np.ndarray:
        tiles = self.detector.tile_count(rgb.shape[1], rgb.shape[0])
        chosen = [(index * self.tiles_per_frame + j) % tiles
                  for j in range(min(self.tiles_per_frame, tiles))] if tiles else []
        found = self.detector.detect(rgb, self.settings.threshold, tiles=chosen)
        grown = [b.scaled(self.settings.box_scale) for b in found]
        return np.array([[b.x0, b.y0, b.x1, b.y1] for b in grown], np.float64).reshape(-1, 4)

    def _emit(self) -> None:
        """Obscure and encode the oldest pending frame: all its neighbours are known."""
        assert self._out is not None
        frame = self._pending.popleft()
        regions, carried = regions_for(frame.index, list(self._window),
                                       self.settings.carry_frames)
        self.carried += carried
        # A face carried over from ten neighbouring frames is ten near-identical boxes;
        # obscuring their union once gives the same pixels for a tenth of the work.
        merged = merge_boxes(np.column_stack([regions, np.ones(len(regions))]), _SAME_PLACE)
        obscure(frame.rgb, [Box(*map(float, r)) for r in merged], self.settings.mode)
        while self._window and self._window[0].index < frame.index + 1 - \
                self.settings.carry_frames:
            self._window.popleft()
        self._encode(frame.rgb, frame.pts)
        self.written += 1
        if self.progress is not None:
            self.progress(self.written, self.video.frames or None)

    # -- decoding -----------------------------------------------------------------------

    def _upright(self, frame: Any) -> np.ndarray:
        """RGB pixels as the source is meant to be displayed (display matrix applied)."""
        shape = (self.height, self.width) if self._rotation % 2 == 0 else \
            (self.width, self.height)
        rgb: np.ndarray = frame.to_ndarray(format="rgb24", width=shape[1], height=shape[0])
        if self._rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, self._rotation))
        return rgb

    def _next_pts(self, frame: Any, index: int) -> int:
        """The source timestamp, made strictly increasing (encoders demand it)."""
        pts = frame.pts
        if pts is None:
            pts = round(index / (self.rate * self.video.time_base))
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + 1
        self._last_pts = int(pts)
        return int(pts)

    # -- encoding -----------------------------------------------------------------------

    def _start(self, frame: Any, temp: Path) -> None:
        """Open the output once the first frame tells us the display rotation."""
        import av

        self._rotation = round(float(getattr(frame, "rotation", 0) or 0) / 90) % 4
        width, height = frame.width, frame.height
        if self._rotation % 2:
            width, height = height, width
        self.width, self.height = width, height
        tiles = self.detector.tile_count(width, height)
        needed = math.ceil(tiles / (self.settings.carry_frames + 1)) if tiles else 0
        self.tiles_per_frame = max(self.settings.tiles_per_frame, needed)
        codec = _encoder()
        if codec != "libx264":
            self.notes.append(f"libx264 is not available in this PyAV build; encoded with "
                              f"{codec}")
        out: Any = av.open(str(temp), "w", format="mp4",
                      options={"movflags": "+faststart", "fflags": "+bitexact"})
        stream = out.add_stream(codec, rate=self.rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"
        stream.codec_context.time_base = self.video.time_base
        if codec == "libx264":
            stream.options = dict(_X264_OPTIONS)
        audio, transcode = self._audio_stream(out)
        self._out = _Output(out, stream, audio, codec, transcode)
        for packet in self._early_audio:
            self._audio_packet(packet)
        self._early_audio.clear()

    def _audio_stream(self, out: Any) -> tuple[Any | None, bool]:
        source = self._audio_in
        if not self.settings.keep_audio or source is None:
            return None, False
        if source.codec_context.name in _MP4_AUDIO:
            stream = out.add_stream_from_template(source)
            self.audio_mode = "copied"
            transcode = False
        else:
            stream = out.add_stream("aac", rate=source.rate or 48_000)
            self.audio_mode = "transcoded"
            transcode = True
        stream.metadata.clear()
        return stream, transcode

    def _audio_packet(self, packet: Any) -> None:
        if self._out is None:
            if len(self._early_audio) >= _MAX_EARLY_AUDIO:
                raise corrupt(self.src, "no video frame among the first audio packets")
            self._early_audio.append(packet)
            return
        audio = self._out.audio
        if audio is None:
            return
        if self._out.transcode_audio:
            for frame in packet.decode():
                for encoded in audio.encode(frame):
                    self._out.container.mux(encoded)
            return
        if packet.dts is None or packet.size == 0:
            return
        packet.stream = audio
        self._out.container.mux(packet)

    def _encode(self, rgb: np.ndarray, pts: int) -> None:
        import av

        assert self._out is not None
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
        frame.pts = pts
        frame.time_base = self.video.time_base
        for packet in self._out.video.encode(frame):
            self._out.container.mux(packet)

    def _finish(self) -> None:
        assert self._out is not None
        for packet in self._out.video.encode(None):
            self._out.container.mux(packet)
        if self._out.audio is not None and self._out.transcode_audio:
            for packet in self._out.audio.encode(None):
                self._out.container.mux(packet)

    # -- the result ---------------------------------------------------------------------

    def report(self) -> RedactionReport:
        assert self._out is not None
        effective = {"tiles_per_frame": self.tiles_per_frame,
                     "encoder": self._out.codec,
                     "encoder_options": _X264_OPTIONS if self._out.codec == "libx264" else {}}
        return report_for(
            self.detector, recorded_settings(self.settings, self.detector, **effective),
            media_type="video/mp4", width=self.width, height=self.height,
            frames=self.written, frame_rate=float(self.rate),
            faces_per_frame=tuple(self.faces), faces_total=sum(self.faces),
            carried_total=self.carried, video_codec=self._out.codec, audio=self.audio_mode,
            notes=tuple(self.notes))


def _encoder() -> str:
    """The first encoder of :data:`ENCODERS` this PyAV build has."""
    import av

    for name in ENCODERS:
        try:
            av.Codec(name, "w")
        except (av.FFmpegError, ValueError):
            continue
        return name
    raise BadInputError("this PyAV build has no H.264 or MPEG-4 encoder",
                        code="no-video-encoder")


def frames_of(path: Path) -> Iterator[np.ndarray]:
    """Decoded RGB frames of a video, one at a time (for tests and benchmarks)."""
    import av

    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            yield frame.to_ndarray(format="rgb24")
