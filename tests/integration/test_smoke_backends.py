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
