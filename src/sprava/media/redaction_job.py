"""Redacting an item: a copy with faces obscured and identifying metadata stripped.

The copy becomes a derived item whose custody event names the original, the detector,
its version, the model's digest and every setting, so a court can see exactly what was
changed. Faces are detected only to be obscured: nothing about them is kept.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import select

from sprava.backends.db.tables import item
from sprava.domain.digest import Digest
from sprava.errors import BadInputError, NotFoundError
from sprava.instance import Instance
from sprava.store.derive import Derived, store_derived

REDACTION = "redaction"
MODES = ("blur", "pixelate", "solid")
PREVIEW_SIDE = 960


def redaction_params(mode: str = "blur", threshold: float = 0.2,
                     keep_audio: bool = False) -> dict[str, Any]:
    """Checked parameters of a redaction, as a job and a custody event record them."""
    if mode not in MODES:
        raise BadInputError(f"unknown redaction mode {mode!r}", code="bad-mode",
                            hint=f"use one of {', '.join(MODES)}")
    if not 0.01 <= threshold <= 0.99:
        raise BadInputError("the detection threshold is a number from 0.01 to 0.99",
                            code="bad-threshold")
    return {"mode": mode, "threshold": float(threshold), "keep_audio": bool(keep_audio)}


def redact_item(instance: Instance, sha: str, params: Mapping[str, Any],
                actor: str | None = None) -> tuple[Derived, dict[str, Any]]:
    """Make (or find, if made before) the redacted copy of item ``sha``."""
    from sprava.media.pipeline import limits_for
    from sprava.media.redact import RedactionSettings, redact_image
    from sprava.media.redact_video import redact_video
    from sprava.media.thumbnail import shared_detector

    checked = redaction_params(**dict(params))
    media_type = _redactable_type(instance, sha)
    settings = RedactionSettings(mode=checked["mode"], threshold=checked["threshold"],
                                 keep_audio=checked["keep_audio"])
    with instance.blobs.local_path(Digest(sha)) as source, \
            tempfile.TemporaryDirectory(prefix="sprava-redact-") as folder:
        if media_type.startswith("image/"):
            suffix = ".jpg" if media_type == "image/jpeg" else ".png"
            out = Path(folder) / f"redacted{suffix}"
            report = redact_image(source, out, settings, limits_for(instance),
                                  detector=shared_detector())
        else:
            out = Path(folder) / "redacted.mp4"
            report = redact_video(source, out, settings, limits_for(instance),
                                  detector=shared_detector())
        recorded = report_settings(report)
        derived = store_derived(instance, original=sha, kind=REDACTION, path=out,
                                tool=recorded["tool"], settings=recorded,
                                actor=actor)
    return derived, recorded


def preview_redaction(instance: Instance, sha: str, params: Mapping[str, Any],
                      side: int = PREVIEW_SIDE) -> bytes:
    """A JPEG of at most ``side`` pixels a side of item ``sha`` redacted with ``params``
    (for a video, one frame from its first second), made in memory and a temporary
    folder and stored nowhere: no derived item, no custody event.

    Faces are sought on a copy of at most ``thumbnail.DETECT_SIDE`` pixels, as for
    thumbnails, so that a preview takes about a second; the redacted copy itself is made
    from the original. Raises what :func:`redact_item` raises for an item that is not
    held or cannot be redacted, and ``corrupt-media`` or ``too-many-pixels``."""
    from sprava.media.pipeline import limits_for
    from sprava.media.redact import RedactionSettings
    from sprava.media.thumbnail import redacted_thumbnail

    checked = redaction_params(**dict(params))
    media_type = _redactable_type(instance, sha)
    settings = RedactionSettings(mode=checked["mode"], threshold=checked["threshold"])
    with instance.blobs.local_path(Digest(sha)) as source, \
            tempfile.TemporaryDirectory(prefix="sprava-preview-") as folder:
        out = Path(folder) / "preview.jpg"
        redacted_thumbnail(source, media_type, out, side, limits_for(instance), settings)
        return out.read_bytes()


def _redactable_type(instance: Instance, sha: str) -> str:
    with instance.engine.connect() as conn:
        media_type = conn.execute(select(item.c.media_type).where(item.c.sha256 == sha)
                                  ).scalar_one_or_none()
    if media_type is None:
        raise NotFoundError(f"no item sha256:{sha}", code="item-not-found")
    if not media_type.startswith(("image/", "video/")):
        raise BadInputError(f"cannot redact {media_type}: only images and videos",
                            code="not-redactable")
    return str(media_type)


def report_settings(report: Any) -> dict[str, Any]:
    """What the custody event records about how a redaction was made (no face positions)."""
    data = report.to_dict()
    return {
        "tool": f"sprava-redact:{data['detector']}",
        "detector": data["detector"],
        "detector_version": data["detector_version"],
        "model_sha256": data["model_sha256"],
        "settings": data["settings"],
        "faces": data["faces_total"],
        "output": {"media_type": data["media_type"], "width": data["width"],
                   "height": data["height"], "frames": data["frames"],
                   "frame_rate": data["frame_rate"], "video_codec": data["video_codec"],
                   "audio": data["audio"]},
    }
