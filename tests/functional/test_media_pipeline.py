"""The media pipeline through the real CLI: analysis jobs, near-duplicates, redaction,
kills in the middle of analysis, and hostile files that must not stop the workers.

Jobs run where the instance says (``SPRAVA_TEST_JOBS``): in worker processes the CLI
starts, or in the Celery workers ``analysis_workers`` starts."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest
from PIL import Image, ImageOps
from sqlalchemy import func, select

from conftest import SAMPLES, AnalysisWorkers, Cli
from sprava.audit import verify_instance
from sprava.backends.db.tables import derived_item, ledger_leaf, phash
from sprava.cli.exitcode import ExitCode
from sprava.domain.custody import DERIVE
from sprava.instance import Instance

EXIF = SAMPLES / "exif-py" / "jpg"
BRIDGE = SAMPLES / "threatexchange-pdq" / "bridge-mods"
FACES = SAMPLES / "dlib-faces"


def _bomb(path: Path) -> None:
    """A valid PNG that declares 50,000 × 50,000 pixels in a few KB."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)
    rows = zlib.compress(b"\x00" * 10_000)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", rows)
                     + chunk(b"IEND", b""))


def _folder(tmp_path: Path) -> Path:
    folder = tmp_path / "incoming"
    folder.mkdir()
    for name in ("Canon_40D.jpg", "Nikon_D70.jpg"):
        (folder / name).write_bytes((EXIF / name).read_bytes())
    (folder / "bridge.jpg").write_bytes((BRIDGE / "aaa-orig.jpg").read_bytes())
    # The same photo re-encoded and resized, as a messenger would re-post it.
    with Image.open(BRIDGE / "aaa-orig.jpg") as img:
        rgb = img.convert("RGB")
    rgb.resize((rgb.width // 2, rgb.height // 2)).save(folder / "bridge-repost.jpg", quality=60)
    # Cropped by 3 % on one side, and a screenshot of it with a phone's white margins.
    rgb.crop((rgb.width * 3 // 100, 0, rgb.width, rgb.height)).save(folder / "bridge-crop.jpg")
    ImageOps.expand(rgb.resize((rgb.width // 3, rgb.height // 3)), border=(20, 90),
                    fill=(250, 250, 250)).save(folder / "bridge-screenshot.png")
    (folder / "group.jpg").write_bytes((FACES / "2008_002470.jpg").read_bytes())
    _bomb(folder / "bomb.png")
    (folder / "truncated.jpg").write_bytes((EXIF / "Canon_40D.jpg").read_bytes()[:700])
    return folder


def _ingest(cli: Cli, folder: Path, *extra: str) -> dict[str, dict]:  # type: ignore[type-arg]
    done = cli("ingest", str(folder), "--json", *extra, timeout=600)
    assert done.code == ExitCode.OK, done.stderr
    return {Path(r["path"]).name: r for r in map(json.loads, done.stdout.splitlines())}


def test_analysis_results_near_duplicates_and_hostile_files(
        cli: Cli, instance: Instance, tmp_path: Path,
        analysis_workers: AnalysisWorkers) -> None:
    analysis_workers.start()
    files = _ingest(cli, _folder(tmp_path), "--wait")
    show = json.loads(cli("show", files["Canon_40D.jpg"]["sha256"], "--json").stdout)
    assert show["metadata"]["camera_make"] == "Canon"
    assert show["metadata"]["camera_model"] == "Canon EOS 40D"
    assert show["analysis"]["metadata"]["status"] == "done"
    assert len(show["pdq"][0]["pdq"]) == 64
    thumb = show["analysis"]["thumbnail"]["result"]["sha256"]
    assert [d["sha256"] for d in show["derived"]] == [thumb]
    bomb = json.loads(cli("show", files["bomb.png"]["sha256"], "--json").stdout)
    assert bomb["analysis"]["phash"]["error"]["code"] == "too-many-pixels"
    truncated = json.loads(cli("show", files["truncated.jpg"]["sha256"], "--json").stdout)
    assert "failed" in {s["status"] for s in truncated["analysis"].values()}
    near = json.loads(cli("similar", files["bridge.jpg"]["sha256"], "--json").stdout)
    assert {m["sha256"] for m in near["matches"]} == {
        files[name]["sha256"]
        for name in ("bridge-repost.jpg", "bridge-crop.jpg", "bridge-screenshot.png")}
    repost = json.loads(cli("show", files["bridge-repost.jpg"]["sha256"], "--json").stdout)
    assert set(repost["cluster"]["members"]) == {
        files[name]["sha256"] for name in
        ("bridge.jpg", "bridge-repost.jpg", "bridge-crop.jpg", "bridge-screenshot.png")}
    by_file = json.loads(cli("similar", str(BRIDGE / "blur-a-little.jpg"), "--json").stdout)
    assert files["bridge.jpg"]["sha256"] in {m["sha256"] for m in by_file["matches"]}
    jobs = json.loads(cli("jobs", "--json").stdout)
    assert jobs["counts"]["queued"] == 0
    assert jobs["counts"]["running"] == 0
    assert verify_instance(instance).ok


def test_redaction_is_a_derived_item_with_its_custody_event(cli: Cli, instance: Instance,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "redacted.jpg"
    done = cli("redact", str(FACES / "2008_002470.jpg"), "--out", str(out), "--json",
               timeout=600)
    assert done.code == ExitCode.OK, done.stderr
    record = json.loads(done.stdout)
    assert record["faces"] >= 1
    with Image.open(out) as img:
        assert not img.getexif()
        assert "xmp" not in img.info
    again = json.loads(cli("redact", record["original"], "--json", timeout=600).stdout)
    assert again["sha256"] == record["sha256"]
    assert again["new"] is False  # the same copy again: no second item, no second event
    with instance.engine.connect() as conn:
        events = conn.execute(select(ledger_leaf.c.data).where(
            ledger_leaf.c.kind == DERIVE, ledger_leaf.c.item_sha256 == record["sha256"])
        ).scalars().all()
    (event,) = [json.loads(e) for e in events]
    assert event["original"] == record["original"]
    assert event["derivation"] == "redaction"
    assert event["settings"]["detector"] == "centerface"
    assert verify_instance(instance).ok


@pytest.mark.inprocess_jobs(reason=(
    "kills `sprava jobs run`, the in-process runner, in the middle of its work; under Celery "
    "that command only waits for the workers: test_celery_jobs.py kills a Celery worker "
    "mid-job instead (test_worker_killed_mid_job_finishes_the_job_once)"))
def test_killed_analysis_is_finished_once_after_restart(cli: Cli, instance: Instance,
                                                        tmp_path: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for path in sorted(BRIDGE.glob("*.jpg")) + sorted(FACES.glob("*.jpg")):
        (folder / path.name).write_bytes(path.read_bytes())
    files = _ingest(cli, folder)
    runner = subprocess.Popen(cli.argv("jobs", "run", "--workers", "2"), env=cli.env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once some, not all, analysis is recorded
        with instance.engine.connect() as conn:
            done = conn.execute(select(func.count()).select_from(derived_item)).scalar_one()
        if 2 <= done < len(files) - 2:
            break
        time.sleep(0.1)
    runner.send_signal(signal.SIGKILL)
    runner.wait(timeout=30)
    finished = cli("jobs", "run", "--workers", "2", timeout=900)
    assert finished.code == ExitCode.OK, finished.stderr
    jobs = json.loads(cli("jobs", "--json").stdout)
    assert jobs["counts"]["done"] == len(files), jobs
    with instance.engine.connect() as conn:
        thumbs = conn.execute(select(derived_item.c.original_sha256, func.count())
                              .group_by(derived_item.c.original_sha256)).all()
        events = conn.execute(select(func.count()).select_from(ledger_leaf)
                              .where(ledger_leaf.c.kind == DERIVE)).scalar_one()
        hashed = conn.execute(select(phash.c.item_sha256, phash.c.variant, func.count())
                              .group_by(phash.c.item_sha256, phash.c.variant)).all()
    assert len(thumbs) == len(files)
    assert all(n == 1 for _, n in thumbs)
    assert events == len({sha for sha, _ in thumbs})
    assert all(n == 1 for _, _, n in hashed)  # no hash stored twice
    assert {sha for sha, variant, _ in hashed if variant == "full"} == set(
        sha for sha, _ in thumbs)
    assert verify_instance(instance).ok


@pytest.fixture(scope="module")
def slow_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A photo large enough to take long to analyse (81 megapixels) and a small one, made
    once for every back end: saving the large one takes seconds (less at the lowest PNG
    compression, which decodes as fast)."""
    folder = tmp_path_factory.mktemp("slow")
    with Image.open(FACES / "2008_002470.jpg") as img:
        img.convert("RGB").resize((9000, 9000)).save(folder / "huge.png", compress_level=1)
    (folder / "small.jpg").write_bytes((EXIF / "Nikon_D70.jpg").read_bytes())
    return folder


def test_a_job_over_its_time_limit_fails_without_stopping_the_rest(
        cli: Cli, instance: Instance, slow_folder: Path,
        analysis_workers: AnalysisWorkers) -> None:
    with (instance.settings.home / "sprava.toml").open("a") as config:
        config.write("analysis_max_seconds = 4\n")  # the small photo needs well under 4 s
    analysis_workers.start()  # after the limit is set: a worker reads it when it starts
    _ingest(cli, slow_folder, "--wait")
    jobs = json.loads(cli("jobs", "--json").stdout)
    assert jobs["counts"]["done"] == 1
    (failed,) = jobs["failures"]
    assert failed["error_code"] == "time-limit"
