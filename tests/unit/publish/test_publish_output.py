"""The site's folder: replaced whole or not at all, and only when it is ours to replace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sprava.errors import ConflictError
from sprava.publish.output import MARKER, check_target, is_sprava_site, staging


def _site(target: Path, text: str) -> None:
    with staging(check_target(target)) as stage:
        stage.write("index.html", text.encode())
        stage.write("en/a/b.html", b"deep")
        stage.write_marker({"origin": "test"})


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".sprava-" in p.name)


def test_a_new_folder_then_a_replacement(tmp_path: Path) -> None:
    target = tmp_path / "public" / "site"
    _site(target, "first")
    assert (target / "index.html").read_text() == "first"
    assert is_sprava_site(target)
    (target / "stale.html").write_text("from the first build")
    _site(target, "second")
    assert (target / "index.html").read_text() == "second"
    assert not (target / "stale.html").exists()  # replaced whole, not merged
    assert (target / "en" / "a" / "b.html").read_bytes() == b"deep"
    assert _leftovers(target.parent) == []
    assert oct((target / "index.html").stat().st_mode & 0o777) == "0o644"


def test_an_empty_folder_is_used(tmp_path: Path) -> None:
    target = tmp_path / "empty"
    target.mkdir()
    _site(target, "x")
    assert (target / "index.html").read_text() == "x"


@pytest.mark.parametrize(("make", "code"), [
    ("foreign", "output-not-a-site"), ("file", "output-not-a-folder"),
    ("link", "output-not-a-folder"), ("bad-marker", "output-not-a-site"),
])
def test_what_is_not_ours_is_refused_and_left_alone(tmp_path: Path, make: str,
                                                    code: str) -> None:
    target = tmp_path / "out"
    if make == "foreign":
        target.mkdir()
        (target / "thesis.odt").write_text("years of work")
    elif make == "file":
        target.write_text("a file")
    elif make == "link":
        (tmp_path / "real").mkdir()
        target.symlink_to(tmp_path / "real")
    else:
        target.mkdir()
        (target / MARKER).write_text('{"format": "something-else/1"}')
    before = sorted(os.listdir(target)) if target.is_dir() else None
    with pytest.raises(ConflictError) as caught:
        check_target(target)
    assert caught.value.code == code
    assert (sorted(os.listdir(target)) if target.is_dir() else None) == before


def test_a_failed_build_leaves_the_previous_site_and_no_leftovers(tmp_path: Path) -> None:
    target = tmp_path / "site"
    _site(target, "good")

    def fail_half_way() -> None:
        with staging(check_target(target)) as stage:
            stage.write("index.html", b"half")
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        fail_half_way()
    assert (target / "index.html").read_text() == "good"
    assert _leftovers(tmp_path) == []


def test_paths_stay_inside_the_site(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not a path inside"), \
            staging(check_target(tmp_path / "s")) as stage:
        stage.write("../escape.html", b"x")
    assert not (tmp_path / "escape.html").exists()
