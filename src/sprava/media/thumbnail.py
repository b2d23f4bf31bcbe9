"""Thumbnails for the team's screens, redacted like anything that leaves the vault.

Faces are obscured on a copy of ``DETECT_SIDE`` pixels (four times the thumbnail, with
the detector's tiles searching it at twice that), and only then is the picture shrunk: a
face too small to be found there is under two pixels wide in the thumbnail. Detecting on
the full 12-megapixel original instead costs about 15 s a photo. A video's thumbnail is a
frame from its first seconds, treated the same way.
"""

from __future__ import annotations

import tempfile
import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sprava.errors import BadInputError
from sprava.media.limits import MediaLimits

if TYPE_CHECKING:
    from sprava.media.redact import RedactionSettings

_JPEG_QUALITY = 85
DETECT_SIDE = 1280


@lru_cache(maxsize=1)
def shared_detector() -> Any:
    """One detector per worker process: loading the model costs more than a thumbnail."""
    from sprava.media.faces import FaceDetector

    return FaceDetector()


def _video_frame(src: Path, out: Path, limits: MediaLimits) -> None:
    import av

    try:
        with av.open(str(src), metadata_errors="ignore") as container:
            if not container.streams.video:
                raise BadInputError("the video has no picture", code="no-video-stream")
            stream = container.streams.video[0]
            if (stream.width or 0) * (stream.height or 0) > limits.max_pixels:
                raise BadInputError("the video frames are too large to decode",
                                    code="too-many-pixels")
            chosen: Any = None
            for index, frame in enumerate(container.decode(video=0)):
                chosen = frame
                if (frame.time or 0) >= 1.0 or index >= 60:
                    break
            if chosen is None:
                raise BadInputError("the video has no decodable frame", code="corrupt-media")
            chosen.to_image().save(out)
    except av.error.FFmpegError as exc:
        raise BadInputError(f"cannot decode the video: {exc}", code="corrupt-media") from None


def _shrink(src: Path, out: Path, limits: MediaLimits) -> None:
    """Write an upright copy of at most ``DETECT_SIDE`` pixels, refusing bombs first."""
    from PIL import Image, ImageOps

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked below
            opened = Image.open(src)
        with opened as image:
            if image.width * image.height > limits.max_pixels:
                raise BadInputError(
                    f"{image.width} × {image.height} pixels is more than max_pixels allows",
                    code="too-many-pixels")
            image.draft("RGB", (DETECT_SIDE, DETECT_SIDE))  # JPEG: decode smaller
            upright = ImageOps.exif_transpose(image).convert("RGB")
    except Image.DecompressionBombError:
        raise BadInputError("the picture declares more pixels than it can hold",
                            code="too-many-pixels") from None
    except (OSError, ValueError) as exc:
        raise BadInputError(f"cannot decode the picture: {exc}", code="corrupt-media") from None
    upright.thumbnail((DETECT_SIDE, DETECT_SIDE))
    upright.save(out)


def redacted_thumbnail(src: Path, media_type: str, out: Path, size: int,
                       limits: MediaLimits, settings: RedactionSettings | None = None
                       ) -> dict[str, Any]:
    """Write a JPEG of at most ``size`` pixels a side to ``out``; returns its provenance.

    Faces are obscured with ``settings`` (the default redaction's, unless given: the
    item page's preview passes the mode and threshold a reader is trying out)."""
    from PIL import Image

    from sprava.media.redact import RedactionSettings, redact_image

    settings = settings or RedactionSettings()
    with tempfile.TemporaryDirectory(prefix="sprava-thumb-") as folder:
        picture = Path(folder) / "picture.png"
        if media_type.startswith("video/"):
            _video_frame(src, picture, limits)
        _shrink(picture if media_type.startswith("video/") else src, picture, limits)
        redacted = Path(folder) / "redacted.png"
        report = redact_image(picture, redacted, settings, limits, detector=shared_detector())
        with Image.open(redacted) as opened:
            picture_rgb = opened.convert("RGB")
        picture_rgb.thumbnail((size, size))
        picture_rgb.save(out, "JPEG", quality=_JPEG_QUALITY)
    data = report.to_dict()
    return {
        "tool": f"sprava-thumbnail:{data['detector']}",
        "faces": data["faces_total"],
        "settings": {"size": size, "format": "jpeg", "quality": _JPEG_QUALITY,
                     "detected_at_side": DETECT_SIDE,
                     "detector": data["detector"],
                     "detector_version": data["detector_version"],
                     "model_sha256": data["model_sha256"], "redaction": data["settings"]},
    }
