"""Each database back end takes an instance through init, ingest and verify."""

from __future__ import annotations

import os
from pathlib import Path

from sprava.audit import verify_instance
from sprava.instance import Instance
from sprava.store.ingest import Ingestor


def test_ingest_then_verify_is_clean(instance: Instance, tmp_path: Path) -> None:
    folder = tmp_path / "media"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"a" * 5000)
    (folder / "b.bin").write_bytes(b"b" * 7)
    ingestor = Ingestor(instance, source_name="smoke")
    summary = ingestor.run(ingestor.plan([os.fsencode(folder)]))
    assert (summary.stored, summary.failed) == (2, 0)
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert (report.items, report.leaves, report.checkpoints) == (2, 2, 1)


def test_blob_that_no_item_names_is_a_note_not_a_failure(
    instance: Instance, tmp_path: Path
) -> None:
    """What a process killed between storing a blob and recording it leaves behind."""
    for name in ("kept.bin", "recorded.bin"):
        (tmp_path / name).write_bytes(name.encode() * 100)
    ingestor = Ingestor(instance)
    ingestor.run(ingestor.plan([os.fsencode(tmp_path / "recorded.bin")]))
    fd = os.open(tmp_path / "kept.bin", os.O_RDONLY)
    try:
        instance.blobs.put_fd(fd)
    finally:
        os.close(fd)
    report = verify_instance(instance)
    assert report.ok
    assert report.notes == [
        "1 stored blob(s) belong to no item (left by an interrupted ingest; harmless, "
        "re-used if the same content is ingested again)"
    ]
