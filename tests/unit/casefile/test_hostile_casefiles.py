"""Hostile case files: each attack gets a named finding or a clear error and exit code from
the single-file verifier, never a traceback, a hang, a write outside the bag, or a read of
a file the bag only points at. One case file per attack, built here."""

from __future__ import annotations

import io
import json
import os
import stat
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sprava.casefile import sprava_verify as sv

DECLARATION = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def _run(path: Path, **options: Any) -> tuple[int, set[str], str]:
    out, err = io.StringIO(), io.StringIO()
    code = sv.run(path, as_json=True, out=out, err=err, **options)
    codes = {f["code"] for f in json.loads(out.getvalue())["findings"]} if out.getvalue() \
        else set()
    return code, codes, err.getvalue()


def _zip(path: Path, entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for info, data in entries:
            archive.writestr(info, data)
    return path


def _info(name: str, *, mode: int = stat.S_IFREG | 0o644) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = mode << 16
    return info


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "data/../../x",
                                  "data\\..\\x", "C:/x", "data/a\x01b", "data//x", "./bagit.txt"])
def test_unsafe_names_in_a_zip_are_named_not_used(tmp_path: Path, name: str) -> None:
    code, codes, _ = _run(_zip(tmp_path / "c.zip", [("bagit.txt", DECLARATION),
                                                     (_info(name), b"x")]))
    assert code == sv.EXIT_FAILED
    assert "name-unsafe" in codes
    assert not (tmp_path.parent / "x").exists()


def test_a_link_inside_a_zip_is_refused(tmp_path: Path) -> None:
    link = _info("data/passwd", mode=stat.S_IFLNK | 0o777)
    code, codes, _ = _run(_zip(tmp_path / "c.zip", [("bagit.txt", DECLARATION),
                                                     (link, b"/etc/passwd")]))
    assert (code, "name-unsafe" in codes) == (sv.EXIT_FAILED, True)


def test_a_name_twice_in_a_zip_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.zip"
    with pytest.warns(UserWarning, match="Duplicate name"):
        _zip(path, [("bagit.txt", DECLARATION), ("data/a", b"1"), ("data/a", b"2")])
    code, codes, _ = _run(path)
    assert (code, "name-unsafe" in codes) == (sv.EXIT_FAILED, True)


def test_a_zip_bomb_is_not_inflated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        with archive.open("sprava/events.jsonl", "w") as entry:
            block = b"\0" * (1 << 20)
            for _ in range(64):
                entry.write(block)
        archive.writestr("bagit.txt", DECLARATION)
    code, codes, _ = _run(path)
    assert (code, "zip-unsafe" in codes) == (sv.EXIT_FAILED, True)


@pytest.mark.parametrize("content", [b"not a zip at all", b"PK\x03\x04" + b"\0" * 100, b""])
def test_what_is_not_a_readable_zip_is_unreadable(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "c.zip"
    path.write_bytes(content)
    code, codes, err = _run(path)
    assert (code, codes) == (sv.EXIT_UNREADABLE, set())
    assert "case-file-unreadable" in err


def test_a_truncated_zip_is_unreadable(tmp_path: Path) -> None:
    path = _zip(tmp_path / "c.zip", [("bagit.txt", DECLARATION), ("data/a", os.urandom(5000))])
    path.write_bytes(path.read_bytes()[:3000])
    assert _run(path)[0] == sv.EXIT_UNREADABLE


def test_a_missing_case_file_is_unreadable(tmp_path: Path) -> None:
    assert _run(tmp_path / "nothing-here")[0] == sv.EXIT_UNREADABLE


def _folder(tmp_path: Path) -> Path:
    bag = tmp_path / "bag"
    (bag / "data").mkdir(parents=True)
    (bag / "sprava").mkdir()
    (bag / "bagit.txt").write_bytes(DECLARATION)
    return bag


def test_links_and_special_files_in_a_folder_are_refused(tmp_path: Path) -> None:
    bag = _folder(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside the bag")
    (bag / "data" / "link.jpg").symlink_to(secret)
    (bag / "linked-dir").symlink_to(tmp_path)
    os.mkfifo(bag / "data" / "pipe")
    (bag / "data" / os.fsdecode(b"bad\xffname")).write_bytes(b"x")
    code, codes, _ = _run(bag)
    assert code == sv.EXIT_FAILED
    assert "name-unsafe" in codes
    report = sv.verify(bag)
    unsafe = sorted(f.subject for f in report.findings if f.code == "name-unsafe")
    assert unsafe == ["data/bad\\udcffname", "data/link.jpg", "data/pipe", "linked-dir"]


@pytest.mark.parametrize(("events", "code"), [
    (b"[" * 200_000 + b"]" * 200_000 + b"\n", "events-malformed"),
    (b'{"index": 0, "leaf": "' + b"a" * (2 << 20) + b'", "proof": []}\n', "events-malformed"),
    (b'{"index": -1, "leaf": "{}", "proof": []}\n', "events-malformed"),
    (b'{"index": 0, "leaf": "{\\"kind\\":1}", "proof": ["zz"]}\n', "events-malformed"),
    (b"\xff\xfe\n", "events-malformed"),
])
def test_malformed_events_are_findings(tmp_path: Path, events: bytes, code: str) -> None:
    bag = _folder(tmp_path)
    (bag / "sprava" / "events.jsonl").write_bytes(events)
    exit_code, codes, _ = _run(bag)
    assert (exit_code, code in codes) == (sv.EXIT_FAILED, True)


@pytest.mark.parametrize("contents", [b"{", b"[]", b'{"format": "sprava-casefile/1"}',
                                      b'{"format": "sprava-casefile/1", "case": "c", '
                                      b'"items": [{}], "events": [], "files": {}, '
                                      b'"consistency_from": []}', b"1e999999"])
def test_malformed_contents_are_findings(tmp_path: Path, contents: bytes) -> None:
    bag = _folder(tmp_path)
    (bag / "sprava" / "contents.json").write_bytes(contents)
    code, codes, _ = _run(bag)
    assert (code, "contents-malformed" in codes) == (sv.EXIT_FAILED, True)


def test_manifest_lines_that_escape_the_bag_are_refused(tmp_path: Path) -> None:
    bag = _folder(tmp_path)
    (bag / "manifest-sha256.txt").write_text("0" * 64 + "  data/../../etc/passwd\n"
                                             + "0" * 64 + "  /etc/passwd\n" + "garbage\n")
    report = sv.verify(bag)
    assert sorted(f.subject for f in report.findings if f.code == "manifest-malformed") == [
        "manifest-sha256.txt line 1", "manifest-sha256.txt line 2",
        "manifest-sha256.txt line 3"]


def test_a_bad_key_on_the_command_line_is_a_usage_error(tmp_path: Path) -> None:
    code, _, err = _run(_folder(tmp_path), key="not+a+key")
    assert code == sv.EXIT_USAGE
    assert "error [usage]" in err



def test_a_state_nested_past_the_stack_is_refused_not_a_crash() -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        sv.canonical_json({"state": deep})
