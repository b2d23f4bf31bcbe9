"""The analysis of one item, step by step, and redaction on request.

Steps are independent: a step that fails (a corrupt file, a decompression bomb, an
unsupported codec) records why on the item and the other steps still run. Every result is
keyed by item and step, so running the analysis again replaces rather than duplicates.
The original is only ever read.
"""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from sprava.backends.db.engine import write_transaction
from sprava.backends.db.tables import analysis, item, phash
from sprava.domain.digest import Digest
from sprava.errors import SpravaError
from sprava.instance import Instance
from sprava.media.limits import MediaLimits

log = logging.getLogger(__name__)

METADATA, PHASH, THUMBNAIL = "metadata", "phash", "thumbnail"
THUMBNAIL_SIZE = 320


def limits_for(instance: Instance) -> MediaLimits:
    settings = instance.settings
    return MediaLimits(max_pixels=settings.max_pixels,
                       max_seconds=settings.analysis_max_seconds)


def _record(instance: Instance, sha: str, step: str, tool: str, *,
            result: Any = None, error: SpravaError | None = None,
            extra: Callable[[Connection], None] | None = None) -> None:
    """Replace the item's row for ``step`` (and run ``extra`` in the same transaction)."""
    with write_transaction(instance.engine) as conn:
        conn.execute(delete(analysis).where(analysis.c.item_sha256 == sha,
                                            analysis.c.step == step))
        conn.execute(insert(analysis).values(
            item_sha256=sha, step=step, status="failed" if error else "done",
            result=None if result is None else json.dumps(result, ensure_ascii=False),
            error_code=error.code if error else None,
            error_message=error.message[:2000] if error else None,
            tool=tool, updated_at=datetime.now(UTC)))
        if step == METADATA:  # the grid filters on it: kept beside the item, indexed
            conn.execute(update(item).where(item.c.sha256 == sha).values(
                captured_at=capture_moment(result)))
        if extra is not None:
            extra(conn)


def capture_moment(result: Any) -> datetime | None:
    """The capture time of a metadata result (``fields.captured_at``) as an aware UTC
    time, or None. A time the camera wrote without its offset is read as UTC: the offset
    is unknown, and the pages show every time in UTC."""
    fields = result.get("fields") if isinstance(result, dict) else None
    text = fields.get("captured_at") if isinstance(fields, dict) else None
    if not isinstance(text, str):
        return None
    try:
        found = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (found if found.tzinfo else found.replace(tzinfo=UTC)).astimezone(UTC)


def _run_step(instance: Instance, sha: str, step: str, tool: str,
              work: Callable[[], tuple[Any, Callable[[Connection], None] | None]]) -> bool:
    """Run one step; a failure is recorded on the item, never raised to the worker."""
    try:
        result, extra = work()
    except SpravaError as exc:
        _record(instance, sha, step, tool, error=exc)
        return False
    except (OSError, ValueError, RuntimeError, MemoryError) as exc:
        # Decoders raise all sorts on hostile input; the reason is kept, the worker lives.
        log.warning("analysis step %s of %s failed: %r", step, sha, exc)
        error = SpravaError(f"{step} failed: {type(exc).__name__}: {exc}"[:500],
                            code="analysis-error")
        _record(instance, sha, step, tool, error=error)
        return False
    _record(instance, sha, step, tool, result=result, extra=extra)
    return True


def analyse(instance: Instance, sha: str) -> dict[str, bool]:
    """Run every analysis step that applies to the item; returns which steps succeeded."""
    with instance.engine.connect() as conn:
        media_type = conn.execute(select(item.c.media_type).where(item.c.sha256 == sha)
                                  ).scalar_one_or_none()
    if media_type is None:
        raise SpravaError(f"no item sha256:{sha}", code="item-not-found")
    limits = limits_for(instance)
    # Decoders seek: on an object store this is a verified local copy, fetched once for
    # all the steps and removed afterwards.
    with instance.blobs.local_path(Digest(sha)) as path:
        outcome = {METADATA: _run_step(instance, sha, METADATA, _metadata_tool(),
                                       lambda: (_metadata(path, media_type, limits), None))}
        if media_type.startswith(("image/", "video/")):
            outcome[PHASH] = _run_step(instance, sha, PHASH, "pdq",
                                       lambda: _phash(instance, sha, path, media_type, limits))
            outcome[THUMBNAIL] = _run_step(
                instance, sha, THUMBNAIL, "sprava-thumbnail",
                lambda: (_thumbnail(instance, sha, path, media_type, limits), None))
    return outcome


def _metadata_tool() -> str:
    import PIL

    try:
        import av

        return f"pillow-{PIL.__version__}+pyav-{av.__version__}"
    except ImportError:
        return f"pillow-{PIL.__version__}"


def _metadata(path: Path, media_type: str, limits: MediaLimits) -> dict[str, Any]:
    from sprava.media.metadata import extract

    found = extract(path, media_type, limits)
    return {"fields": found.fields, "raw": found.raw}


def _phash(instance: Instance, sha: str, path: Path, media_type: str,
           limits: MediaLimits) -> tuple[Any, Callable[[Connection], None]]:
    from sprava.media.phash import pdq_image_variants, pdq_video

    rows: list[tuple[float | None, str, str, int]]
    if media_type.startswith("image/"):
        rows = [(None, label, h.hex, h.quality) for label, h in pdq_image_variants(path, limits)]
    else:
        rows = [(f.second, "full", f.hex, f.quality) for f in pdq_video(path, limits)]

    def store(conn: Connection) -> None:
        from sprava.media.similarity import link_clusters

        conn.execute(delete(phash).where(phash.c.item_sha256 == sha))
        if rows:
            conn.execute(insert(phash), [
                {"item_sha256": sha, "frame_second": second, "variant": variant,
                 "hash": hex_, "quality": quality}
                for second, variant, hex_, quality in rows])
        link_clusters(instance, conn, sha)

    full = [(s, h, q) for s, v, h, q in rows if v == "full"]
    result = {"hashes": [{"second": s, "pdq": h, "quality": q} for s, h, q in full],
              "variants": len(rows) - len(full)}
    return result, store


def _thumbnail(instance: Instance, sha: str, path: Path, media_type: str,
               limits: MediaLimits) -> dict[str, Any]:
    from sprava.media.thumbnail import redacted_thumbnail
    from sprava.store.derive import store_derived

    with tempfile.TemporaryDirectory(prefix="sprava-thumb-") as folder:
        out = Path(folder) / "thumbnail.jpg"
        report = redacted_thumbnail(path, media_type, out, THUMBNAIL_SIZE, limits)
        derived = store_derived(instance, original=sha, kind=THUMBNAIL, path=out,
                                tool=report["tool"], settings=report["settings"],
                                actor="sprava:analysis")
    return {"sha256": derived.sha256, "faces": report["faces"]}
