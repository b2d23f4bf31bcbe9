"""What each kind of job does. Handlers are idempotent: running one twice equals once."""

from __future__ import annotations

from typing import Any

from sprava.errors import ConfigurationError, SpravaError
from sprava.jobs.kinds import ANALYSE, REDACT
from sprava.jobs.queue import Job


def _media() -> Any:
    try:
        import av  # noqa: F401
        import numpy  # noqa: F401
        import pdqhash  # noqa: F401
        import PIL  # noqa: F401

        from sprava.media import pipeline
    except ImportError as exc:
        raise ConfigurationError(
            f"media analysis is not installed ({exc.name} is missing)", code="media-missing",
            hint="install the media extra: pip install 'sprava[media]'",
        ) from None
    return pipeline


def handle(instance: Any, job: Job) -> None:
    """Run ``job``; raises SpravaError when the job as a whole cannot be done."""
    if job.kind == ANALYSE:
        _media().analyse(instance, job.item_sha256)
    elif job.kind == REDACT:
        from sprava.media.redaction_job import redact_item

        redact_item(instance, job.item_sha256, job.params)
    else:
        raise SpravaError(f"unknown job kind {job.kind!r}", code="unknown-job")
