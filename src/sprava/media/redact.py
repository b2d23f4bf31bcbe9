"""Redacted copies: faces obscured, identifying metadata gone, the original untouched.

A redacted copy is what may leave the restricted zone (DESIGN.md, "Protect people"), so it
is built to leak nothing by construction rather than by scrubbing:

- the output image is made from decoded pixels only, so no EXIF, GPS, XMP, maker note,
  serial number, owner name or ICC profile of the source can ride along;
- every detected face is obscured by a step that throws information away (the region is
  shrunk to a handful of cells before it is smoothed or pixelated, or filled), so no
  deblurring or zoom brings it back;
- face boxes exist only in memory while a file is processed: the report counts them and
  records how they were found (detector, version, model digest, settings), nothing more;
- nothing but the output is written, and the output appears under its final name only
  when complete (written beside it and renamed), so a crash leaves no half-redacted file.

Videos are handled in :mod:`sprava.media.redact_video`; :func:`redact_video` here is the
same function, so callers need one import.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from sprava.errors import BadInputError, NotFoundError
from sprava.media.faces import DETECTOR_NAME, Box, Detector, FaceDetector
from sprava.media.limits import MediaLimits

if TYPE_CHECKING:
    from PIL import Image

Mode = Literal["blur", "pixelate", "solid"]
MODES: tuple[Mode, ...] = ("blur", "pixelate", "solid")

_CELLS = 6  # an obscured face keeps at most this many cells across its longer side
_MIN_CELL = 4  # ... and no cell is smaller than this many pixels
_JPEG_QUALITY = 92


@dataclass(frozen=True)
class RedactionSettings:
    """How faces are obscured. Recorded in full with every redacted copy.

    ``box_scale`` grows each detected box about its centre: detectors box the face
    tightly, and hair, ears and chin identify people too.

    Video only: ``carry_frames`` (k) obscures a box seen in frame t in frames t-k .. t+k
    as well (and where the same face is seen on both sides of a frame, at the position
    in between), so a face the detector misses in one frame — motion blur, a turned
    head — is still covered. ``tiles_per_frame`` is how many of the detector's tiles each
    frame searches besides the whole-frame pass; tiles are visited in turn, and at least
    enough are searched per frame that every tile is seen within ``carry_frames + 1``
    frames. ``keep_audio`` is off by default: voices identify people too.
    """

    mode: Mode = "blur"
    threshold: float = 0.2
    box_scale: float = 1.3
    keep_audio: bool = False
    carry_frames: int = 5
    tiles_per_frame: int = 1

    def __post_init__(self) -> None:
        problems = []
        if self.mode not in MODES:
            problems.append(f"mode must be one of {', '.join(MODES)}")
        if not 0.01 <= self.threshold <= 0.99:
            problems.append("threshold must be from 0.01 to 0.99")
        if not 1.0 <= self.box_scale <= 3.0:
            problems.append("box_scale must be from 1 to 3")
        if not 0 <= self.carry_frames <= 50:
            problems.append("carry_frames must be from 0 to 50")
        if self.tiles_per_frame < 1:
            problems.append("tiles_per_frame must be at least 1")
        if problems:
            raise BadInputError("; ".join(problems), code="bad-redaction-settings")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class RedactionReport:
    """What a redaction did, for the custody event of the derived item.

    It holds counts and provenance only: where faces were is deliberately not kept.
    ``faces_per_frame`` counts faces detected in each frame; ``carried_total`` counts
    regions obscured in a frame because of a detection in a neighbouring one.
    """

    media_type: str
    width: int
    height: int
    frames: int
    frame_rate: float | None
    faces_per_frame: tuple[int, ...]
    faces_total: int
    carried_total: int
    detector: str
    detector_version: str
    model_sha256: str
    settings: Mapping[str, Any] = field(hash=False)
    video_codec: str | None = None
    audio: str = "none"  # none (the source has none), dropped, copied or transcoded
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["faces_per_frame"] = list(self.faces_per_frame)
        data["notes"] = list(self.notes)
        data["settings"] = dict(self.settings)
        return data


def recorded_settings(settings: RedactionSettings, detector: Detector,
                      **effective: Any) -> dict[str, Any]:
    """Every setting that shaped the output, the detector's included."""
    searched = detector.settings.to_dict()
    searched.pop("threshold")  # the redaction's threshold is the one used
    return {**settings.to_dict(), **effective, "detector": searched}


def report_for(detector: Detector, settings: Mapping[str, Any], **fields: Any
               ) -> RedactionReport:
    info = detector.info
    return RedactionReport(detector=info.name, detector_version=info.version,
                           model_sha256=info.sha256, settings=settings, **fields)


# --- obscuring ------------------------------------------------------------------------


def face_regions(rgb: np.ndarray, detector: Detector, settings: RedactionSettings
                 ) -> list[Box]:
    """The regions to obscure in one image: detected faces, grown by ``box_scale``."""
    return [b.scaled(settings.box_scale) for b in detector.detect(rgb, settings.threshold)]


def pixel_bounds(box: Box, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The box rounded outwards to whole pixels and clipped to the image, or None."""
    x0, y0 = max(0, math.floor(box.x0)), max(0, math.floor(box.y0))
    x1, y1 = min(width, math.ceil(box.x1)), min(height, math.ceil(box.y1))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def obscure(image: np.ndarray, regions: Sequence[Box], mode: Mode) -> int:
    """Obscure ``regions`` of an H×W×3 (or ×4) ``uint8`` image in place; returns how many.

    ``blur`` and ``pixelate`` first shrink the region to at most ``_CELLS`` cells across
    (cells of at least ``_MIN_CELL`` px), which destroys the detail a face is recognised
    by; ``blur`` then smooths the cells and enlarges them bilinearly. A Gaussian blur
    alone would not do: it can be partly undone by deconvolution. ``solid`` paints
    the region black. The alpha channel, if any, is left as it is.
    """
    import cv2

    height, width = image.shape[:2]
    done = 0
    for box in regions:
        bounds = pixel_bounds(box, width, height)
        if bounds is None:
            continue
        x0, y0, x1, y1 = bounds
        region = image[y0:y1, x0:x1, :3]
        if mode == "solid":
            region[...] = 0
        else:
            rh, rw = region.shape[:2]
            cell = max(_MIN_CELL, math.ceil(max(rw, rh) / _CELLS))
            small = cv2.resize(np.ascontiguousarray(region),
                               (max(1, math.ceil(rw / cell)), max(1, math.ceil(rh / cell))),
                               interpolation=cv2.INTER_AREA)
            if mode == "pixelate":
                region[...] = cv2.resize(small, (rw, rh), interpolation=cv2.INTER_NEAREST)
            else:
                # Smoothing the few cells before enlarging them is as good as blurring the
                # enlarged region, and a thousand times cheaper for large faces.
                soft = cv2.GaussianBlur(small, (0, 0), sigmaX=0.8,
                                        borderType=cv2.BORDER_REFLECT)
                region[...] = cv2.resize(soft, (rw, rh), interpolation=cv2.INTER_LINEAR)
        done += 1
    return done


# --- files -----------------------------------------------------------------------------


def refuse_same_file(src: Path, dst: Path) -> None:
    """An original is never changed (DESIGN.md, "Preserve first"): refuse dst == src."""
    if dst.resolve() == src.resolve():
        raise BadInputError(f"the output {dst} is the original itself", code="same-file",
                            hint="write the redacted copy to a new file")


@contextlib.contextmanager
def staged_output(dst: Path) -> Iterator[Path]:
    """A temporary path beside ``dst``, renamed to ``dst`` only if the body succeeds.

    Threat: a crash or a decoding error half-way must not leave a file under the final
    name that looks like a finished redaction. The temporary file is in the same folder
    (same file system, so the rename is atomic) and is removed on failure.
    """
    if not dst.parent.is_dir():
        raise NotFoundError(f"the output folder {dst.parent} does not exist",
                            code="output-folder-missing")
    temp = dst.with_name(f".{dst.name}.{secrets.token_hex(6)}.part")
    try:
        yield temp
        os.replace(temp, dst)
    finally:
        with contextlib.suppress(FileNotFoundError):
            temp.unlink()


def corrupt(src: Path, why: object) -> BadInputError:
    return BadInputError(f"{src.name} cannot be decoded: {why}", code="corrupt-media",
                         hint="the file is damaged, truncated or not a supported format")


def too_many_pixels(src: Path, width: int, height: int, limits: MediaLimits) -> BadInputError:
    return BadInputError(
        f"{src.name} is {width}×{height} = {width * height:,} pixels, more than the "
        f"{limits.max_pixels:,} allowed", code="too-many-pixels",
        hint="a decompression bomb, or an image too large to redact on this instance")


# --- images ----------------------------------------------------------------------------


def redact_image(src: Path, dst: Path, settings: RedactionSettings,
                 limits: MediaLimits | None = None, *,
                 detector: Detector | None = None) -> RedactionReport:
    """Write ``dst``: the image ``src`` upright, faces obscured, with no metadata at all.

    JPEG (and MPO) in gives JPEG out, PNG gives PNG, anything else (HEIC, WebP, TIFF,
    GIF, …) gives PNG; transparency is kept in PNG output. Of a multi-frame image only the
    first frame is kept (the report says so). EXIF orientation is applied to the pixels
    first, so the copy displays as the original did without carrying the tag.

    Raises ``BadInputError`` with code ``too-many-pixels`` (from the header, before any
    pixel is decoded), ``corrupt-media`` (undecodable or truncated) or ``same-file``;
    ``NotFoundError`` if ``src`` or the output folder does not exist.
    """
    limits = limits or MediaLimits()
    refuse_same_file(src, dst)
    detector = detector or FaceDetector()
    pixels, source_format, frames = _load_upright(src, limits)
    as_jpeg = source_format in ("JPEG", "MPO")
    if as_jpeg and pixels.shape[2] == 4:
        pixels = np.ascontiguousarray(pixels[:, :, :3])
    regions = face_regions(pixels[:, :, :3], detector, settings)
    obscure(pixels, regions, settings.mode)
    _write_clean(pixels, dst, "JPEG" if as_jpeg else "PNG")
    notes = ((f"only the first of {frames} frames was kept",) if frames > 1 else ())
    height, width = pixels.shape[:2]
    return report_for(
        detector, recorded_settings(settings, detector),
        media_type="image/jpeg" if as_jpeg else "image/png", width=width, height=height,
        frames=1, frame_rate=None, faces_per_frame=(len(regions),),
        faces_total=len(regions), carried_total=0, notes=notes)


def _load_upright(src: Path, limits: MediaLimits) -> tuple[np.ndarray, str, int]:
    """Decoded pixels (H×W×3, or ×4 with transparency), EXIF orientation applied."""
    from PIL import Image, ImageOps

    _register_heif()
    try:
        with warnings.catch_warnings():
            # We apply our own, stricter pixel limit right below, from the header.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(src)
    except FileNotFoundError as exc:
        raise NotFoundError(f"{src} does not exist", code="media-not-found") from exc
    except Image.DecompressionBombError as exc:
        raise BadInputError(f"{src.name}: {exc}", code="too-many-pixels") from exc
    except (OSError, SyntaxError, ValueError) as exc:  # PIL.UnidentifiedImageError is OSError
        raise corrupt(src, exc) from exc
    with image:
        width, height = image.size
        if width * height > limits.max_pixels:
            raise too_many_pixels(src, width, height, limits)
        if width == 0 or height == 0:
            raise corrupt(src, "the image has no pixels")
        source_format = image.format or ""
        frames = int(getattr(image, "n_frames", 1) or 1)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                image.load()
                upright = ImageOps.exif_transpose(image) or image
                converted = _to_rgb_or_rgba(upright)
        except (OSError, SyntaxError, ValueError, EOFError) as exc:
            raise corrupt(src, exc) from exc
        return np.array(converted), source_format, frames


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    from PIL import Image

    if image.mode.startswith(("I", "F")):
        # Pillow converts 16-bit and float greys to 8 bits by clipping, which turns a
        # 16-bit scan almost white; scale it instead.
        values = np.asarray(image, dtype=np.float64)
        top = 255.0 if image.mode == "F" or values.max() <= 255 else 65535.0
        grey = np.clip(values * (255.0 / top), 0, 255).round().astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    transparent = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        image.mode == "P" and "transparency" in image.info)
    return image.convert("RGBA" if transparent else "RGB")


def _write_clean(pixels: np.ndarray, dst: Path, fmt: str) -> None:
    """Save pixels as a new image: built from the array alone, it has no metadata to leak."""
    from PIL import Image

    fresh = Image.fromarray(np.ascontiguousarray(pixels))  # RGB or RGBA, from the shape
    options: dict[str, Any] = ({"quality": _JPEG_QUALITY} if fmt == "JPEG"
                               else {"compress_level": 6})
    with staged_output(dst) as temp, open(temp, "xb") as handle:
        fresh.save(handle, format=fmt, **options)
        handle.flush()
        os.fsync(handle.fileno())


def _register_heif() -> None:
    """Let Pillow open HEIC photos (iPhones' default), if pillow-heif is installed."""
    try:
        import pillow_heif
    except ImportError:  # pragma: no cover - part of the media extra
        return
    pillow_heif.register_heif_opener()


# --- videos ----------------------------------------------------------------------------


def redact_video(src: Path, dst: Path, settings: RedactionSettings,
                 limits: MediaLimits | None = None, *,
                 detector: Detector | None = None,
                 progress: Callable[[int, int | None], None] | None = None,
                 ) -> RedactionReport:
    """Write ``dst``: an H.264 MP4 of ``src`` with faces obscured in every frame.

    See :func:`sprava.media.redact_video.redact_video` for the details and the errors.
    """
    from sprava.media.redact_video import redact_video as run

    return run(src, dst, settings, limits, detector=detector, progress=progress)


__all__ = [
    "DETECTOR_NAME", "MODES", "Mode", "RedactionReport", "RedactionSettings", "face_regions",
    "obscure", "redact_image", "redact_video",
]
