"""Where a site is written: a staging folder beside the target, swapped in whole.

Readers of a published folder (a web server, a mirror's rsync) must never see half a
site, and a failed build must leave the previous site as it was. So the site is written
into a fresh folder beside the target (same file system, so a rename is atomic), every
file is flushed to disk, and the staging folder then takes the target's place: on Linux
with one ``renameat2(RENAME_EXCHANGE)``, so that the path never stops naming a whole
site; elsewhere with two renames, the old site moved aside first.

The target is replaced only when it is missing, empty, or a site Sprava wrote (it holds
the :data:`MARKER` file that says so): a mistyped ``--out`` must not wipe a folder of
someone's files.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from sprava.errors import ConfigurationError, ConflictError

MARKER = ".sprava-site"
SITE_FORMAT = "sprava-site/1"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def is_sprava_site(folder: Path) -> bool:
    """Whether ``folder`` holds the marker of a site Sprava wrote."""
    try:
        raw = (folder / MARKER).read_bytes()
        marker = json.loads(raw[:4096])
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and str(marker.get("format", "")).startswith(
        "sprava-site/")


def check_target(out: Path) -> Path:
    """The absolute target folder, after checking it may be (re)placed.

    Raises ConflictError ``output-not-a-site`` (a non-empty folder Sprava did not write),
    ``output-not-a-folder`` (a file, or a symbolic link) and ConfigurationError
    ``output-unwritable`` (its parent cannot be written).
    """
    target = Path(os.path.abspath(out))
    if target.is_symlink():
        raise ConflictError(f"{target} is a symbolic link", code="output-not-a-folder",
                            hint="give the folder's real path")
    if target.exists():
        if not target.is_dir():
            raise ConflictError(f"{target} is not a folder", code="output-not-a-folder",
                                hint="give a new or empty folder, or a site published before")
        if any(target.iterdir()) and not is_sprava_site(target):
            raise ConflictError(
                f"{target} is not empty and is not a site Sprava published",
                code="output-not-a-site",
                hint="give a new or empty folder; Sprava replaces only a folder it wrote "
                f"itself (one holding {MARKER})")
    parent = target.parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"cannot create {parent}: {exc.strerror}",
                                 code="output-unwritable") from None
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigurationError(f"cannot write in {parent}", code="output-unwritable",
                                 hint="the site is built beside its folder, then renamed")
    return target


class Staging:
    """A folder being filled with a site; files are written durably, by relative path."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.files: list[str] = []

    def write(self, relative: str, data: bytes) -> None:
        if relative.startswith("/") or ".." in relative.split("/"):
            raise ValueError(f"not a path inside the site: {relative!r}")
        path = self.path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        self.files.append(relative)

    def write_marker(self, info: dict[str, Any]) -> None:
        self.write(MARKER, (json.dumps({"format": SITE_FORMAT, **info}, indent=1)
                            + "\n").encode())


def _sync_dirs(root: Path) -> None:
    for folder, _dirs, _files in os.walk(root):
        _fsync_dir(Path(folder))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux ``renameat2``); False where that is not possible."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    return bool(renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b),
                          _RENAME_EXCHANGE) == 0)


def _swap_in(staged: Path, target: Path) -> None:
    if not target.exists() or not any(target.iterdir()):
        os.rename(staged, target)  # rename(2) replaces an empty folder atomically
        return
    if not is_sprava_site(target):  # checked before the build; checked again now
        raise ConflictError(f"{target} is no longer a site Sprava published",
                            code="output-not-a-site", hint="give a new or empty folder")
    if _exchange(staged, target):
        shutil.rmtree(staged)  # now holds the previous site
        return
    aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.sprava-old-", dir=target.parent))
    os.rmdir(aside)
    os.rename(target, aside)
    os.rename(staged, target)
    shutil.rmtree(aside, ignore_errors=True)


@contextmanager
def staging(target: Path) -> Iterator[Staging]:
    """A staging folder beside ``target``; on a clean exit it becomes ``target``.

    On an error the staging folder is removed and ``target`` is left as it was.
    """
    staged = Path(tempfile.mkdtemp(prefix=f".{target.name}.sprava-new-", dir=target.parent))
    try:
        os.chmod(staged, 0o755)  # noqa: S103  (a published site is for everyone to read)
        yield Staging(staged)
        _sync_dirs(staged)
        _swap_in(staged, target)
        _fsync_dir(target.parent)
    except BaseException:
        with suppress(OSError):
            shutil.rmtree(staged)
        raise
