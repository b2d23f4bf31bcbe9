"""PDQ perceptual hashes of images, and of video frames sampled about once a second.

PDQ (Meta's ThreatExchange) reduces a picture to 256 bits that barely move when it is
re-encoded, resized or lightly edited, so re-posted copies of one photo are found by
Hamming distance: PDQ calls two pictures the same at a distance of 31 bits or less. The
hex form and bit order are ThreatExchange's, so our hashes can be compared with hash lists
built with its tools.

Choices, and why:

* **No EXIF orientation.** python-threatexchange (behind ThreatExchange's tools, and the
  source of the published test hashes) hashes the stored pixel grid and never applies the
  orientation tag; so do we, to stay comparable. A sideways phone photo and an upright
  re-encode of it therefore differ by a rotation, which PDQ does not absorb (the same
  holds for video rotation metadata).
* **A working size of 2048 px.** Larger pictures are reduced (JPEG already while decoding,
  in the DCT domain, then an area average) until the long side is 2048 px. The C++
  reference squashes anything over 512 px to 512 × 512, but on its own sample photos that
  moves the hash up to 14 bits away from the full-size hash that python-threatexchange and
  the Java reference publish: half of the 31-bit match budget. At 2048 the published
  hashes are reproduced exactly (the samples are at most 2000 px wide), and 15–50
  megapixel test pictures stayed within 4 bits of their full-size hash (1024 px: 12 bits,
  512 px: 20), while time and memory stay bounded. The price is speed: a 12-megapixel
  photo costs about four times imagehash's pHash (``bench/media_phash.py``).
* **Hostile input.** The pixel count is checked from the header before a pixel is
  decoded; only common photo formats are opened (never EPS, whose plugin runs
  Ghostscript); video is opened with an allow-list of demuxers and no nested files (an
  HLS or concat "video" could otherwise make FFmpeg read other files), sampled by seeking,
  and bounded by packet and wall-clock budgets.
"""

from __future__ import annotations

import contextlib
import functools
import math
import re
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pdqhash
from PIL import Image

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits

__all__ = ["MATCH_DISTANCE", "FrameHash", "PdqHash", "hamming", "pdq_image", "pdq_video"]

MATCH_DISTANCE = 31
"""PDQ's published threshold: hashes this close or closer are the same picture."""

_WORK_SIDE = 2048
_IMAGE_FORMATS = ("JPEG", "PNG", "GIF", "WEBP", "TIFF", "BMP", "HEIF", "AVIF")
# Demuxers of real video files; never playlists (hls), lists (concat) or image sequences.
_VIDEO_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,avi,mpegts,mpeg,flv,ogg,asf"
_HEX_HASH = re.compile(r"[0-9a-fA-F]{64}")
_DEFAULT_LIMITS = MediaLimits()
_FRAME_SLACK = 1e-4  # seconds: frame times are rounded to the stream's time base


@dataclass(frozen=True)
class PdqHash:
    """A PDQ hash as 64 lowercase hex digits, and PDQ's quality (0–100).

    Quality below about 50 means a flat or featureless picture whose hash matches too
    much to be trusted as evidence of a near-duplicate.
    """

    hex: str
    quality: int


@dataclass(frozen=True)
class FrameHash:
    """The PDQ hash of the video frame shown at ``second`` (from the stream's start)."""

    second: float
    hex: str
    quality: int


def pdq_image(path: Path, limits: MediaLimits = _DEFAULT_LIMITS) -> PdqHash:
    """The PDQ hash of the image at ``path`` (its first frame if animated).

    Raises ``BadInputError``: ``too-many-pixels`` when the header declares more than
    ``limits.max_pixels`` (refused before decoding), ``corrupt-media`` when the file is
    truncated, corrupt or not in a supported image format. ``OSError`` if the file
    cannot be opened at all (a caller's problem, not the file's).
    """
    _register_heif()
    with path.open("rb") as file:
        rgb = _decode_image(file, limits)
    with _decoding("image"):
        return _pdq_of_rgb(rgb)


def pdq_video(path: Path, limits: MediaLimits = _DEFAULT_LIMITS) -> list[FrameHash]:
    """PDQ hashes of frames about one second apart, by seeking rather than walking.

    At most ``limits.max_frames_sampled`` frames are hashed: a longer video gets them
    spread evenly over its whole length. Reading stops early when ``limits.max_packets``
    packets have been demuxed or ``limits.max_seconds`` have passed, and the frames hashed
    so far are returned, so a video of a million tiny frames costs bounded time.

    Raises ``BadInputError``: ``video-too-long`` (declared duration over
    ``limits.max_video_seconds``), ``too-many-pixels`` (frame size), ``no-video-stream``,
    ``corrupt-media`` (unreadable, or no frame could be decoded), ``analysis-budget``
    (the budget ran out before a single frame).
    """
    budget = _Budget(limits)
    with path.open("rb") as file, _decoding("video"):
        import av

        container = av.open(
            file,
            container_options={"format_whitelist": _VIDEO_DEMUXERS},
            io_open=_refuse_nested_file,
        )
        with container:
            stream = _video_stream(container)
            _check_pixels(stream.codec_context.width, stream.codec_context.height, limits,
                          allow_unknown=True)
            # FFmpeg itself refuses to allocate frames larger than this.
            stream.codec_context.options = {"max_pixels": str(limits.max_pixels)}
            duration = _duration(container, stream)
            if duration is not None and duration > limits.max_video_seconds:
                raise BadInputError(
                    f"the video lasts {duration:,.0f} s, more than the "
                    f"{limits.max_video_seconds:,.0f} s analysed",
                    code="video-too-long",
                    hint="cut it into shorter parts to have them analysed",
                )
            sampler = _Sampler(container, stream, budget, limits)
            return sampler.run(_sample_times(duration, limits.max_frames_sampled))


def hamming(a_hex: str, b_hex: str) -> int:
    """How many of the 256 bits differ; at most ``MATCH_DISTANCE`` means the same picture.

    Raises ``BadInputError`` (``bad-hash``) unless both are 64 hex digits.
    """
    return (_hash_int(a_hex) ^ _hash_int(b_hex)).bit_count()


def _hash_int(text: str) -> int:
    """Validate strictly: ``int(x, 16)`` alone would take ``0x``, ``_`` and spaces."""
    if not isinstance(text, str) or not _HEX_HASH.fullmatch(text):
        raise BadInputError(f"not a PDQ hash (64 hex digits): {str(text)[:80]!r}",
                            code="bad-hash")
    return int(text, 16)


# -- images -----------------------------------------------------------------------------


def pdq_image_variants(path: Path, limits: MediaLimits = _DEFAULT_LIMITS
                       ) -> list[tuple[str, PdqHash]]:
    """The plain hash (labelled ``full``) and hashes of slightly cropped and border-trimmed
    versions of the picture, for matching crops and screenshots.

    PDQ is not robust to cropping: 2–3 % off one edge already moves a hash past the match
    threshold. A copy cropped by a few percent is close to one of these variants (measured
    on the sample photos: every crop up to 5 % off any side or corner within 32 bits), and
    a screenshot with uniform margins is close to the ``trimmed`` variant. Variants are
    hashed from a 512-pixel copy: about 60 ms per picture on this class of machine.
    """
    _register_heif()
    with path.open("rb") as file:
        rgb = _decode_image(file, limits)
    with _decoding("image"):
        out = [("full", _pdq_of_rgb(rgb))]
        small = Image.fromarray(rgb)
        small.thumbnail((_VARIANT_SIDE, _VARIANT_SIDE))
        for label, box in _crop_boxes(*small.size):
            out.append((label, _pdq_of_rgb(np.asarray(small.crop(box)))))
        trimmed = _trim_margins(rgb)
        if trimmed is not None:
            out.append(("trimmed", _pdq_of_rgb(trimmed)))
    return out


_VARIANT_SIDE = 512
_CROP_SCALES = (0.97, 0.94)


def _crop_boxes(width: int, height: int) -> list[tuple[str, tuple[int, int, int, int]]]:
    """Crops at two scales: anchored at the corners, edges and centre, and one side only."""
    boxes = []
    for scale in _CROP_SCALES:
        cw, ch = round(width * scale), round(height * scale)
        for x, xn in ((0, "l"), ((width - cw) // 2, "c"), (width - cw, "r")):
            for y, yn in ((0, "t"), ((height - ch) // 2, "m"), (height - ch, "b")):
                boxes.append((f"crop{scale:.2f}-{yn}{xn}", (x, y, x + cw, y + ch)))
        boxes += [(f"crop{scale:.2f}-left", (width - cw, 0, width, height)),
                  (f"crop{scale:.2f}-right", (0, 0, cw, height)),
                  (f"crop{scale:.2f}-top", (0, height - ch, width, height)),
                  (f"crop{scale:.2f}-bottom", (0, 0, width, ch))]
    return boxes


def _trim_margins(rgb: np.ndarray, tolerance: float = 8.0) -> np.ndarray | None:
    """The picture without uniform margins (a screenshot's bars, a letterbox), or None."""
    grey = rgb.astype(np.float32).mean(axis=2)
    rows = grey.std(axis=1) > tolerance
    cols = grey.std(axis=0) > tolerance
    if not rows.any() or not cols.any():
        return None
    top, bottom = int(rows.argmax()), len(rows) - int(rows[::-1].argmax())
    left, right = int(cols.argmax()), len(cols) - int(cols[::-1].argmax())
    height, width = grey.shape
    trimmed_area = (bottom - top) * (right - left)
    if trimmed_area >= 0.98 * height * width or trimmed_area < 0.1 * height * width:
        return None  # nothing to trim, or so much that what is left is not the picture
    return rgb[top:bottom, left:right]


@functools.cache
def _register_heif() -> None:
    """Teach Pillow HEIF once per process (iPhone photos are HEIC)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()


def _decode_image(file: Any, limits: MediaLimits) -> np.ndarray:
    """RGB pixels at no more than the working size, refusing bombs from the header."""
    with _decoding("image"), warnings.catch_warnings():
        # Only pixels or an exception matter here: our own pixel limit replaces Pillow's
        # DecompressionBombWarning, and complaints about broken metadata belong to the
        # metadata step (warnings turned into errors would refuse a decodable picture).
        warnings.simplefilter("ignore")
        with Image.open(file, formats=_IMAGE_FORMATS) as image:
            _check_pixels(*image.size, limits)
            target = _work_size(*image.size)
            if target != image.size:
                image.draft(None, target)  # JPEG: decode at 1/2, 1/4 or 1/8 scale
            rgb = image.convert("RGB")
        if rgb.size != target:
            rgb = rgb.resize(target, Image.Resampling.BOX)
        return np.asarray(rgb)


def _work_size(width: int, height: int) -> tuple[int, int]:
    """The size to hash at: unchanged up to ``_WORK_SIDE``, else scaled to fit it."""
    longest = max(width, height)
    if longest <= _WORK_SIDE:
        return width, height
    scale = _WORK_SIDE / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def _check_pixels(width: int, height: int, limits: MediaLimits, *,
                  allow_unknown: bool = False) -> None:
    """Refuse a picture by its declared size, before the decoder allocates for it."""
    if allow_unknown and width == 0 and height == 0:
        return
    if width <= 0 or height <= 0:
        raise BadInputError(f"the picture declares an impossible size {width} × {height}",
                            code="corrupt-media")
    if width * height > limits.max_pixels:
        raise BadInputError(
            f"{width:,} × {height:,} pixels is more than the {limits.max_pixels:,} allowed",
            code="too-many-pixels",
            hint="this is typical of a decompression bomb; a genuine picture this large "
                 "needs a higher max_pixels",
        )


def _pdq_of_rgb(rgb: np.ndarray) -> PdqHash:
    bits, quality = pdqhash.compute(np.ascontiguousarray(rgb, dtype=np.uint8))
    return PdqHash(_bits_to_hex(bits), int(quality))


def _bits_to_hex(bits: np.ndarray) -> str:
    """Element 0 becomes the most significant bit of the first hex digit.

    This is how python-threatexchange prints the pdqhash vector, so the hex strings
    equal those in ThreatExchange's tests and hash lists.
    """
    return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()


@contextlib.contextmanager
def _decoding(kind: str) -> Iterator[None]:
    """Turn whatever a decoder raises on hostile bytes into ``BadInputError``.

    Decoders raise OSError, ValueError, SyntaxError, struct.error, EOFError and more on
    broken input; all mean the same thing to the caller. ``MemoryError`` is left alone:
    it says something about this machine, not about the file.
    """
    try:
        yield
    except (BadInputError, MemoryError):
        raise
    except Image.DecompressionBombError as exc:
        raise BadInputError(f"the {kind} declares too many pixels: {exc}",
                            code="too-many-pixels") from exc
    except Exception as exc:
        detail = f"{type(exc).__name__}: {exc}"[:300]
        raise BadInputError(
            f"the {kind} is truncated, corrupt or in an unsupported format ({detail})",
            code="corrupt-media",
        ) from exc


# -- video ------------------------------------------------------------------------------


def _refuse_nested_file(url: str, flags: int, options: dict[str, str]) -> Any:
    """FFmpeg asks this before a demuxer opens a second file; the answer is always no."""
    raise PermissionError(f"a video may not refer to other files or URLs ({url[:80]!r})")


def _video_stream(container: Any) -> Any:
    """The first real video stream (cover art in MP4 or MKV is a one-picture stream)."""
    import av

    for stream in container.streams.video:
        if not stream.disposition & av.stream.Disposition.attached_pic:
            return stream
    raise BadInputError("the file has no video stream", code="no-video-stream")


def _duration(container: Any, stream: Any) -> float | None:
    """Declared length in seconds, from the stream or else the container; None if unknown."""
    import av

    if stream.duration is not None and stream.time_base is not None and stream.duration > 0:
        return float(stream.duration * stream.time_base)
    if container.duration is not None and container.duration > 0:
        return float(container.duration / av.time_base)
    return None


def _sample_times(duration: float | None, count: int) -> list[float]:
    """Every second, or evenly spread when a longer video would need more than ``count``.

    Unknown duration: every second from the start, up to ``count`` frames.
    """
    if count <= 0:
        return []
    if duration is None:
        return [float(i) for i in range(count)]
    step = max(1.0, duration / count)
    n = max(1, min(count, math.ceil(duration / step)))
    return [i * step for i in range(n)]


class _OutOfBudget(Exception):
    """The packet or time budget of one video ran out."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class _Budget:
    """Packets demuxed and wall-clock time spent on one video."""

    def __init__(self, limits: MediaLimits):
        self.packets_left = limits.max_packets
        self.deadline = time.monotonic() + limits.max_seconds
        self.max_seconds = limits.max_seconds

    def take_packet(self) -> None:
        self.packets_left -= 1
        if self.packets_left < 0:
            raise _OutOfBudget("analysis-budget", "the video has more packets than the "
                                                  "analysis budget allows")
        if time.monotonic() > self.deadline:
            raise _OutOfBudget("analysis-budget", f"analysis took longer than "
                                                  f"{self.max_seconds:,.0f} s")


class _Sampler:
    """Decodes the frames at given times, seeking while seeking helps.

    A seek lands on the keyframe before the target. When it lands before the frame we
    already reached, keyframes are too sparse for seeking to pay (each seek would decode
    the same run again, quadratic on a single-keyframe video), so from then on frames are
    decoded straight through, within the packet and time budget.
    """

    def __init__(self, container: Any, stream: Any, budget: _Budget, limits: MediaLimits):
        self.container, self.stream, self.budget, self.limits = container, stream, budget, limits
        self.time_base = stream.time_base
        self.start = stream.start_time or 0
        self.frames = self._decode()
        self.position: float | None = None  # time of the last frame decoded
        self.sequential = False

    def run(self, times: list[float]) -> list[FrameHash]:
        hashes: list[FrameHash] = []
        try:
            for target in times:
                if hashes and hashes[-1].second >= target - _FRAME_SLACK:
                    continue  # a long frame (or a gap) already covered this time
                found = self._frame_at(target)
                if found is None:
                    break  # the video ended before its declared duration
                second, frame = found
                _check_pixels(frame.width, frame.height, self.limits)
                rgb = frame.to_ndarray(format="rgb24", interpolation="AREA",
                                       **_frame_size(frame.width, frame.height))
                pdq = _pdq_of_rgb(rgb)
                hashes.append(FrameHash(round(second, 6), pdq.hex, pdq.quality))
        except _OutOfBudget as exc:
            if not hashes:
                raise BadInputError(f"{exc}, before a single frame was decoded",
                                    code=exc.code) from exc
        if not hashes and times:
            raise BadInputError("no frame of the video could be decoded", code="corrupt-media")
        return hashes

    def _frame_at(self, target: float) -> tuple[float, Any] | None:
        """The first frame shown at or after ``target`` seconds; None past the end."""
        just_seeked = False
        if self.position is not None and not self.sequential and target > self.position:
            try:
                self.container.seek(self.start + int(target / self.time_base),
                                    stream=self.stream, backward=True)
            except Exception:  # not seekable (no index, broken one): read on instead
                self.sequential = True
            else:
                self.frames = self._decode()
                just_seeked = True
        for frame in self.frames:
            second = self._second(frame)
            if second is None:  # no timestamp: the best we can say is "about here"
                second = target if self.position is None else max(target, self.position)
            if just_seeked:
                just_seeked = False
                if self.position is not None and second < self.position - _FRAME_SLACK:
                    self.sequential = True
            self.position = second if self.position is None else max(self.position, second)
            if second >= target - _FRAME_SLACK:
                return second, frame
        return None

    def _decode(self) -> Iterator[Any]:
        """Frames from the current read position, every packet charged to the budget.

        All streams are demuxed and filtered here, not by PyAV: its filtering loop would
        skip a flood of audio or data packets without ever giving the budget a say.
        """
        index = self.stream.index
        for packet in self.container.demux():
            self.budget.take_packet()
            if packet.stream_index == index:
                yield from packet.decode()

    def _second(self, frame: Any) -> float | None:
        if frame.pts is None:
            return None
        return float((frame.pts - self.start) * self.time_base)


def _frame_size(width: int, height: int) -> dict[str, int]:
    """Reformat arguments that bring a frame down to the working size, as for images."""
    target = _work_size(width, height)
    return {} if target == (width, height) else {"width": target[0], "height": target[1]}
