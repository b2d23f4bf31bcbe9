"""``sprava catalogue``: the real commands, their JSON output and their exit codes."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import stat
from pathlib import Path

from conftest import Cli, new_instance
from sprava.cli.exitcode import ExitCode
from sprava.store.ingest import Ingestor


def _instance(tmp_path: Path, name: str, *ingest: Path) -> Cli:
    """A new instance (SQLite) holding the files ``ingest``, and its CLI."""
    instance = new_instance(tmp_path / name, f"sqlite:///{tmp_path / name}.db")
    try:
        if ingest:
            ingestor = Ingestor(instance)
            ingestor.run(ingestor.plan([os.fsencode(p) for p in ingest]))
    finally:
        instance.close()
    return Cli(tmp_path / name)


def test_import_sfm_export_and_import_elsewhere(tmp_path: Path) -> None:
    sample = tmp_path / "sfm.csv"
    with open(sample, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["unit:id:admin", "unit:name", "unit:related_unit", "person:id:admin",
                         "person:name", "person:posting_role", "person:posting:source"])
        writer.writerow(["u-1", "Мінскі АМАП", "", "p-1", "Дзмітрый Балаба", "Commander",
                         "=cmd|' /C calc'!A0"])
        writer.writerow(["u-2", "Роты", "u-1", "", "", "", ""])
    first = _instance(tmp_path, "first")
    done = first("catalogue", "import-sfm", str(sample), "--lang", "be", "--json")
    assert done.code == ExitCode.OK, done.stderr
    summary = json.loads(done.stdout)
    assert (summary["created"]["units"], summary["created"]["persons"],
            summary["created"]["claims"]) == (2, 1, 2)

    out = tmp_path / "catalogue.zip"
    exported = first("catalogue", "export", "--format", "csv", "--out", str(out), "--json")
    assert exported.code == ExitCode.OK, exported.stderr
    record = json.loads(exported.stdout)
    assert record["sha256"] == hashlib.sha256(out.read_bytes()).hexdigest()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # persons are restricted
    again = first("catalogue", "export", "--out", str(out))
    assert again.code == ExitCode.USAGE
    assert "file-exists" in again.stderr
    assert "Traceback" not in again.stderr

    second = _instance(tmp_path, "second", sample)  # the source of every claim
    imported = second("catalogue", "import", str(out))
    assert imported.code == ExitCode.OK, imported.stderr
    assert "created: 2 units, 1 persons, 2 claims" in imported.stdout

