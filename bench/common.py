"""Helpers shared by the benchmarks: temp folders, page cache, child timing and RSS, tables."""

from __future__ import annotations

import contextlib
import json
import math
import os
import platform
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
TMP_BASE = RESULTS / "tmp"
MB = 1_000_000
MIB = 1 << 20


def log(message: str) -> None:
    print(f"  [{time.strftime('%H:%M:%S')}] {message}", flush=True)


@dataclass
class Ctx:
    """What every benchmark gets: the run's mode and where to put its files."""

    quick: bool
    cache: str  # "cold" (page cache dropped before each measured step) or "hot"
    sprava: str  # the CLI executable of this venv

    @contextlib.contextmanager
    def tempdir(self, name: str) -> Iterator[Path]:
        """A folder on the repo's disk, removed afterwards whatever happens."""
        TMP_BASE.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=TMP_BASE))
        if os.stat(path).st_dev != os.stat(REPO).st_dev:
            shutil.rmtree(path)
            raise RuntimeError(f"{path} is not on the same file system as {REPO}")
        try:
            yield path
        finally:
            remove_tree(path)

    def prepare_cache(self, *paths: Path) -> None:
        """Before a measured step: drop the page cache, or (if we cannot) read inputs hot."""
        os.sync()
        if self.cache == "cold":
            _write_drop_caches()
            return
        for path in paths:
            _read_all(path)


def _write_drop_caches() -> None:
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def can_drop_caches() -> bool:
    try:
        os.sync()
        _write_drop_caches()
    except OSError:
        return False
    return True


def _read_all(path: Path) -> None:
    if path.is_dir():
        for root, _dirs, files in os.walk(path):
            for name in files:
                _read_all(Path(root) / name)
        return
    with open(path, "rb", buffering=0) as f:
        while f.read(8 * MIB):
            pass


def child_env() -> dict[str, str]:
    """The environment for ``sprava`` children: no SPRAVA_* settings leak in from the shell,
    and no detached background-analysis worker is started after an ingest (it would run
    into the next measured step and race the clean-up; random bytes are not media, so it
    would find nothing to analyse)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SPRAVA_")}
    env["SPRAVA_BACKGROUND_JOBS"] = "false"
    return env


def remove_tree(path: Path) -> None:
    """``rmtree`` that retries a moment if something still writes there."""
    for attempt in range(5):
        try:
            shutil.rmtree(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            if attempt == 4:
                raise
            time.sleep(0.5)


def sprava_executable() -> str:
    beside = Path(sys.executable).parent / "sprava"
    if beside.exists():
        return str(beside)
    found = shutil.which("sprava")
    if found is None:
        raise RuntimeError("the sprava command is not installed in this environment")
    return found


@dataclass
class Measured:
    seconds: float
    max_rss: int  # bytes: the largest resident set of the child and anything it waited for
    stdout: str


def measure(cmd: Sequence[str | Path], cwd: Path | None = None,
            env: dict[str, str] | None = None) -> Measured:
    """Run ``cmd`` in its own child and return its wall time and peak RSS.

    The RSS comes from ``wait4`` on that very child, so it is this command's own figure
    (the maximum over it and its reaped children, e.g. cp and openssl under ``sh -c``),
    never mixed with earlier children of the benchmark process.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen([str(c) for c in cmd], stdout=out, stderr=err, cwd=cwd,
                                env=env or child_env())
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text, errors = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited with {proc.returncode}: {errors[-2000:]}")
    return Measured(seconds, usage.ru_maxrss * 1024, text)


def json_lines(text: str) -> list[dict[str, Any]]:
    """The JSON objects a ``--json`` command printed, one a line."""
    records = []
    for line in text.splitlines():
        if line.startswith("{"):
            value = json.loads(line)
            if isinstance(value, dict):
                records.append(value)
    return records


def run_quiet(cmd: Sequence[str | Path]) -> str:
    done = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, check=False,
                          env=child_env())
    if done.returncode != 0:
        raise RuntimeError(f"{cmd[0]} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def median(values: Sequence[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass
class Row:
    """One figure, Sprava beside its peer. ``ratio`` is always Sprava ÷ peer."""

    metric: str
    unit: str
    sprava: float
    peer_name: str = "—"
    peer: float | None = None
    target: str = "—"
    met: bool | None = None

    @property
    def ratio(self) -> float | None:
        if self.peer is None or self.peer == 0:
            return None
        return self.sprava / self.peer


@dataclass
class Result:
    name: str
    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rows = [dict(asdict(r), ratio=r.ratio) for r in self.rows]
        return {"name": self.name, "title": self.title, "rows": rows, "notes": self.notes,
                "details": self.details}


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "—"
    if value == 0:
        text = "0"
    elif abs(value) >= 1000:
        text = f"{value:,.0f}"
    elif abs(value) >= 100:
        text = f"{value:.0f}"
    elif abs(value) >= 10:
        text = f"{value:.1f}"
    elif abs(value) >= 1:
        text = f"{value:.2f}"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".rstrip()


def table_lines(result: Result) -> list[str]:
    header = ["metric", "Sprava", "peer", "peer value", "Sprava÷peer", "target", "met"]
    body = []
    for r in result.rows:
        met = "—" if r.met is None else ("yes" if r.met else "NO")
        ratio = "—" if r.ratio is None else f"{r.ratio:.3g}"
        body.append([r.metric, fmt(r.sprava, r.unit), r.peer_name, fmt(r.peer, r.unit),
                     ratio, r.target, met])
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True))

    return [line(header), "-+-".join("-" * w for w in widths), *(line(b) for b in body)]


def print_result(result: Result) -> None:
    print(f"\n== {result.name}: {result.title}")
    for text in table_lines(result):
        print(text)
    for note in result.notes:
        print(f"  note: {note}")
    sys.stdout.flush()


def _cpu_model() -> str:
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                return text.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total() -> str:
    try:
        for text in Path("/proc/meminfo").read_text().splitlines():
            if text.startswith("MemTotal:"):
                return f"{int(text.split()[1]) / (1 << 20):.1f} GiB"
    except OSError:
        pass
    return "unknown"


def _filesystem(path: Path) -> str:
    best, answer = "", "unknown"
    real = str(path.resolve())
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return answer
    for text in mounts:
        device, mount, fstype, options = text.split()[:4]
        if (real == mount or real.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, answer = mount, f"{fstype} on {device} (mounted at {mount}, {options})"
    usage = shutil.disk_usage(path)
    return f"{answer}; {usage.free / (1 << 30):.0f} GiB free"


def _git_commit() -> str:
    try:
        return run_quiet(["git", "-C", REPO, "describe", "--always", "--dirty"]).strip()
    except (OSError, RuntimeError):
        return "unknown"


def loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def machine() -> dict[str, str]:
    TMP_BASE.mkdir(parents=True, exist_ok=True)
    try:
        openssl_cli = run_quiet(["openssl", "version"]).strip()
    except (OSError, RuntimeError):
        openssl_cli = "not found"
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "nproc": str(cpus),
        "cpu": _cpu_model(),
        "memory": _mem_total(),
        "kernel": f"{platform.system()} {platform.release()}",
        "temp_dir": str(TMP_BASE),
        "temp_fs": _filesystem(TMP_BASE),
        "python": sys.version.split()[0],
        "sqlite": sqlite3.sqlite_version,
        "openssl (Python)": ssl.OPENSSL_VERSION,
        "openssl (CLI)": openssl_cli,
        "sprava commit": _git_commit(),
        "load average": f"{loadavg()} (1, 5, 15 min) at start",
    }


def print_machine(info: dict[str, str], cache: str) -> None:
    print("Machine")
    for key, value in info.items():
        print(f"  {key:<17} {value}")
    how = ("cold: `sync` and drop_caches before every measured step" if cache == "cold" else
           "hot: drop_caches is not writable, so inputs are read once before each step")
    print(f"  {'page cache':<17} {how}")
    sys.stdout.flush()
