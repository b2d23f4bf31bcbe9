"""Crash safety: SIGKILL an ingest at random moments; the instance must verify every time.

Each round starts the real CLI on a folder of fresh and already-held files (small and
multi-megabyte, several per transaction), kills it at a random moment of its run, and
then runs the full ``verify``: no item without its blob, no leaf without its item, no
checkpoint ahead of its leaves. 20 rounds per database back end in the normal suite (a
round costs one to three seconds on a loaded 2-core host), of which at least two must kill
an ingest in the middle of its work; ``SPRAVA_SLOW=1`` runs 500.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

from conftest import SLOW, Cli
from sprava.audit import verify_instance
from sprava.instance import Instance, open_instance

ROUNDS = 500 if SLOW else 20


def _fill(folder: Path, rnd: random.Random, round_no: int) -> None:
    """A mix of fresh content and content the vault already holds."""
    folder.mkdir(exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    for i in range(12):
        size = rnd.choice([0, 100, 10_000, 300_000, 3_000_000 if i % 4 == 0 else 50_000])
        (folder / f"r{round_no:04}-{i:02}.bin").write_bytes(rnd.randbytes(size))
    for i in range(3):
        (folder / f"shared-{i}.txt").write_text(f"the same content every round {i}\n")


def _run_and_kill(cli: Cli, folder: Path, tmp: Path, delay: float,
                  after_work_starts: bool) -> int | None:
    """Start an ingest and SIGKILL it ``delay`` seconds after it starts, or after it
    starts writing (its first temporary blob appears), so that kills land in the work
    itself rather than in the interpreter's start-up, whatever the machine's speed."""
    left_over = set(tmp.iterdir())  # a killed round's temporaries stay until the next ingest
    proc = subprocess.Popen(cli.argv("ingest", str(folder), "--json"), env=cli.env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if after_work_starts:
        deadline = time.monotonic() + 60
        while (proc.poll() is None and not set(tmp.iterdir()) - left_over
               and time.monotonic() < deadline):
            time.sleep(0.001)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    code = proc.wait(timeout=60)
    return None if code == -signal.SIGKILL else code


def test_killed_ingest_always_leaves_a_verifiable_instance(
    instance: Instance, tmp_path: Path, cli: Cli
) -> None:
    rnd = random.Random(int(os.environ.get("SPRAVA_CRASH_SEED", "6962")))
    folder = tmp_path / "incoming"
    with (instance.settings.home / "sprava.toml").open("a") as config:
        config.write("batch_files = 3\n")
    blobs_tmp = instance.blobs.root / "tmp"
    # How long start-up and an uninterrupted run take, to spread the kills over the work.
    (tmp_path / "nothing").mkdir()
    started = time.monotonic()
    assert cli("ingest", str(tmp_path / "nothing")).code == 0
    start_up = time.monotonic() - started
    _fill(folder, rnd, 0)
    started = time.monotonic()
    assert cli("ingest", str(folder)).code == 0
    full_run = time.monotonic() - started
    work = max(0.05, full_run - start_up)
    killed_mid_work = 0
    for round_no in range(1, ROUNDS + 1):
        _fill(folder, rnd, round_no)
        previous = verify_instance(instance)
        before, notes_before = previous.leaves, previous.notes
        # Four rounds in five aim at the work; the fifth may land anywhere, start-up too.
        anywhere = round_no % 5 == 0
        delay = rnd.uniform(0.0, full_run if anywhere else work)
        finished = _run_and_kill(cli, folder, blobs_tmp, delay, after_work_starts=not anywhere)
        current = open_instance(instance.settings)
        try:
            report = verify_instance(current)
        finally:
            current.close()
        assert report.ok, (round_no, [f.to_dict() for f in report.findings])
        if finished is None and (before < report.leaves < before + 15
                                 or report.notes != notes_before):
            killed_mid_work += 1  # between commits, or with blobs written but not recorded
    # The kills must really land inside ingests, not only before or after them: quiet
    # runs land 20 to 30 of 50 there, a loaded machine (a busy CI host) as few as 9
    # (23 and 39 of 50 on SQLite and PostgreSQL on a 2-core host at load 5).
    assert killed_mid_work >= max(2, ROUNDS // 8), killed_mid_work
    final = cli("ingest", str(folder))
    assert final.code == 0, final.stderr
    assert verify_instance(instance).ok
    assert instance.blobs.temp_count() == 0
