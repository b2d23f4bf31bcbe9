"""The kinds of job Sprava queues, and which items they apply to."""

from __future__ import annotations

ANALYSE = "analyse"  # metadata, perceptual hashes, near-duplicates, redacted thumbnail
REDACT = "redact"  # a redacted copy with the settings in the job's parameters

_ANALYSABLE = ("image/", "video/", "audio/")


def analysable(media_type: str) -> bool:
    """Whether the analysis job has anything to do for content of this type."""
    return media_type.startswith(_ANALYSABLE)
