"""Every single mutation of a real case file is caught, by `sprava verify CASEFILE` (the real
command table, run in-process) and by the single-file verifier shipped inside the bag (run
in its own `python -I` process, which must not load Sprava).

The case is built through the real services from real camera photos and exported on each
database back end. Each mutation is applied to a fresh copy of the bag, and then, as an
attacker who knows BagIt would, the manifests are recomputed ("re-manifested"), so that
only the signed record can catch it; the plain BagIt checks are exercised by the variants
left as they are. The test enumerates every target of every kind and asserts 100 %.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer

from casefile_world import RECIPIENT, build_world
from conftest import BACKENDS, PostgresServer, new_instance
from sprava.backends.db.engine import read_transaction
from sprava.casefile.export import export_case
from sprava.cli.app import build_app
from sprava.ledger import log
from sprava.ledger.note import NoteSigner

Mutate = Callable[[Path], None]


@dataclass(frozen=True)
class Mutation:
    kind: str
    target: str
    apply: Mutate
    remanifest: bool = True
    trusted_key: bool = False  # verify with the real key given, as a holder of it would


@dataclass
class Bag:
    folder: Path
    key: str  # the instance's verifier key


def _export(database_url: str, root: Path) -> Bag:
    instance = new_instance(root / "instance", database_url)
    try:
        world = build_world(instance, root)
        with read_transaction(instance.engine) as conn:
            earlier = log.head_size(conn)  # a signed checkpoint to prove consistency from
        done = export_case(instance, world.case_id, recipient=RECIPIENT, out=root / "case",
                           zipped=False, prove_from=[earlier])
        return Bag(done.path, str(instance.verifier))
    finally:
        instance.close()


@pytest.fixture(scope="module")
def bags(request: pytest.FixtureRequest,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Bag]]:
    """The sample case exported on every database back end (the verifying needs none)."""
    out: dict[str, Bag] = {}
    dropped: list[Callable[[], None]] = []
    try:
        for backend in BACKENDS:
            root = tmp_path_factory.mktemp(f"casefile-{backend}")
            if backend == "sqlite":
                out[backend] = _export(f"sqlite:///{root / 'sprava.db'}", root)
                continue
            server: PostgresServer = request.getfixturevalue("postgres_server")
            name = f"c_{uuid.uuid4().hex[:16]}"
            server.admin(f'CREATE DATABASE "{name}"')
            dropped.append(functools.partial(server.admin, f'DROP DATABASE "{name}" WITH (FORCE)'))
            out[backend] = _export(server.url(name), root)
        yield out
    finally:
        for drop in dropped:
            drop()


@pytest.fixture(scope="module")
def bag(bags: dict[str, Bag]) -> Bag:
    return next(iter(bags.values()))


# --- helpers -------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    """Replace a file (never write into it: the copies share the pristine bag's inodes)."""
    path.unlink(missing_ok=True)
    path.write_bytes(data)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _remanifest(folder: Path) -> None:
    """What an attacker who knows BagIt does after an edit: recompute both manifests."""
    def lines(paths: list[str]) -> str:
        return "".join(f"{hashlib.sha256((folder / p).read_bytes()).hexdigest()}  {p}\n"
                       for p in paths)

    names = _files(folder)
    if (folder / "manifest-sha256.txt").exists():
        _write(folder / "manifest-sha256.txt",
               lines([n for n in names if n.startswith("data/")]).encode())
    if (folder / "tagmanifest-sha256.txt").exists():
        _write(folder / "tagmanifest-sha256.txt", lines(
            [n for n in _files(folder) if not n.startswith("data/")
             and n != "tagmanifest-sha256.txt"]).encode())


def _flip(name: str, offset: int | None = None) -> Mutate:
    def apply(folder: Path) -> None:
        data = bytearray((folder / name).read_bytes())
        at = len(data) // 2 if offset is None else offset
        data[at] ^= 0x01
        _write(folder / name, bytes(data))
    return apply


def _drop(name: str) -> Mutate:
    return lambda folder: (folder / name).unlink()


def _add(name: str, data: bytes) -> Mutate:
    def apply(folder: Path) -> None:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        _write(folder / name, data)
    return apply


def _event_lines(folder: Path) -> list[str]:
    return (folder / "sprava" / "events.jsonl").read_text("utf-8").splitlines(keepends=True)


def _edit_events(change: Callable[[list[str]], list[str]]) -> Mutate:
    def apply(folder: Path) -> None:
        path = folder / "sprava" / "events.jsonl"
        lines = path.read_text("utf-8").splitlines(keepends=True)
        _write(path, "".join(change(lines)).encode())
    return apply


def _edit_leaf(number: int) -> Mutate:
    """Change what event ``number`` says (its actor), keeping it canonical JSON."""
    def change(lines: list[str]) -> list[str]:
        entry = json.loads(lines[number])
        entry["leaf"] = entry["leaf"].replace('"actor":"', '"actor":"x', 1)
        lines[number] = json.dumps(entry, ensure_ascii=False) + "\n"
        return lines
    return _edit_events(change)


def _alter_proof(number: int, position: int) -> Mutate:
    def change(lines: list[str]) -> list[str]:
        entry = json.loads(lines[number])
        h = entry["proof"][position]
        entry["proof"][position] = ("0" if h[0] != "0" else "1") + h[1:]
        lines[number] = json.dumps(entry, ensure_ascii=False) + "\n"
        return lines
    return _edit_events(change)


def _edit_text(name: str, change: Callable[[str], str]) -> Mutate:
    def apply(folder: Path) -> None:
        path = folder / name
        _write(path, change(path.read_text("utf-8")).encode())
    return apply


def _alter_consistency(number: int, field: str, position: int = 0) -> Mutate:
    def change(text: str) -> str:
        lines = text.splitlines(keepends=True)
        entry = json.loads(lines[number])
        if field == "proof":
            h = entry["proof"][position]
            entry["proof"][position] = ("0" if h[0] != "0" else "1") + h[1:]
        else:
            entry["old_root"] = ("0" if entry["old_root"][0] != "0" else "1") + \
                entry["old_root"][1:]
        lines[number] = json.dumps(entry) + "\n"
        return "".join(lines)
    return _edit_text("sprava/consistency.jsonl", change)


def _checkpoint_line(line_no: int, change: Callable[[str], str]) -> Mutate:
    def edit(text: str) -> str:
        lines = text.split("\n")
        lines[line_no] = change(lines[line_no])
        return "\n".join(lines)
    return _edit_text("sprava/checkpoint.txt", edit)


def _resign(signer: NoteSigner) -> Mutate:
    """Swap the key and re-sign the checkpoint with it: a bag forged whole."""
    def apply(folder: Path) -> None:
        note = (folder / "sprava" / "checkpoint.txt").read_text("utf-8")
        size, root = note.split("\n")[1:3]
        body = f"{signer.name}\n{size}\n{root}\n"
        _write(folder / "sprava" / "checkpoint.txt", signer.sign(body).encode())
        lines = []
        for line in (folder / "sprava" / "consistency.jsonl").read_text().splitlines():
            entry = json.loads(line)
            if entry["checkpoint"]:
                old_size, old_root = entry["checkpoint"].split("\n")[1:3]
                entry["checkpoint"] = signer.sign(f"{signer.name}\n{old_size}\n{old_root}\n")
            lines.append(json.dumps(entry) + "\n")
        _write(folder / "sprava" / "consistency.jsonl", "".join(lines).encode())
        _write(folder / "sprava" / "verifier-key.txt", f"{signer.verifier}\n".encode())
    return apply


def _other_key_id(text: str) -> str:
    name, key_id, body = text.strip().split("+", 2)
    return f"{name}+{'0' if key_id[0] != '0' else '1'}{key_id[1:]}+{body}\n"


def mutations(pristine: Path, key: str) -> list[Mutation]:
    """Every applicable target of every kind of mutation."""
    files = _files(pristine)
    payload = [f for f in files if f.startswith("data/")]
    tags = [f for f in files if not f.startswith("data/")]
    origin = key.split("+")[0]
    out: list[Mutation] = []
    for name in payload:
        out += [Mutation("flip a byte in a payload file", name, _flip(name), remanifest=False),
                Mutation("flip a byte in a payload file", name, _flip(name)),
                Mutation("flip a byte in a payload file", f"{name} (first byte)",
                         _flip(name, 0))]
    for name in tags:
        if name.endswith("manifest-sha256.txt"):  # re-manifesting would undo the flip
            out.append(Mutation("flip a byte in a tag file", name, _flip(name),
                                remanifest=False))
        else:
            out.append(Mutation("flip a byte in a tag file", name, _flip(name)))
    for name in files:
        out.append(Mutation("drop a file", name, _drop(name), remanifest=False))
        if name not in ("manifest-sha256.txt", "tagmanifest-sha256.txt"):
            out.append(Mutation("drop a file", name, _drop(name)))
    lookalike = "data/" + "ab" * 32 + ".jpg"
    for name, data in ((lookalike, b"\xff\xd8\xff planted"), ("data/notes.txt", b"planted"),
                       ("sprava/extra.json", b"{}"), ("report/extra.html", b"<p>planted"),
                       ("extra.txt", b"planted"), ("tools/helper.py", b"print(1)"),
                       ("manifest-md5.txt", b"")):
        out += [Mutation("add a file", name, _add(name, data), remanifest=False),
                Mutation("add a file", name, _add(name, data))]
    lines = _event_lines(pristine)
    for number, line in enumerate(lines):
        entry = json.loads(line)
        subject = f"event {entry['index']}"
        out += [Mutation("edit an event", subject, _edit_leaf(number)),
                Mutation("drop an event", subject,
                         _edit_events(lambda ls, n=number: ls[:n] + ls[n + 1:]))]
        if number + 1 < len(lines):
            out.append(Mutation("reorder events", f"{subject} and the next", _edit_events(
                lambda ls, n=number: [*ls[:n], ls[n + 1], ls[n], *ls[n + 2:]])))
        for position in range(len(entry["proof"])):
            out.append(Mutation("alter a proof hash", f"{subject} hash {position}",
                                _alter_proof(number, position)))
    proofs = (pristine / "sprava" / "consistency.jsonl").read_text().splitlines()
    assert proofs, "the sample bag carries a consistency proof"
    for number, line in enumerate(proofs):
        out.append(Mutation("alter a proof hash", f"consistency {number} old root",
                            _alter_consistency(number, "old_root")))
        for position in range(len(json.loads(line)["proof"])):
            out.append(Mutation("alter a proof hash", f"consistency {number} hash {position}",
                                _alter_consistency(number, "proof", position)))
    for target, change in (
            ("tree size", _checkpoint_line(1, lambda s: str(int(s) + 1))),
            ("smaller tree size", _checkpoint_line(1, lambda s: str(int(s) - 1))),
            ("root hash", _checkpoint_line(2, lambda s: ("B" if s[0] != "B" else "C") + s[1:])),
            ("origin", _checkpoint_line(0, lambda s: s + "x")),
            ("signature", _checkpoint_line(4, lambda s: s[:-6] + ("AAAA" if s[-6:-2] != "AAAA"
                                                                  else "BBBB") + s[-2:])),
            ("extension line", _checkpoint_line(2, lambda s: s + "\nextension")),
            ("signature removed", _checkpoint_line(4, lambda s: ""))):
        out.append(Mutation("alter the checkpoint", target, change))
    other = NoteSigner.generate(origin)
    stranger = NoteSigner.generate("someone.else/log")
    out += [
        Mutation("swap the key", "same name, other key", _edit_text(
            "sprava/verifier-key.txt", lambda _s: f"{other.verifier}\n")),
        Mutation("swap the key", "another log's key", _edit_text(
            "sprava/verifier-key.txt", lambda _s: f"{stranger.verifier}\n")),
        Mutation("swap the key", "key id altered", _edit_text(
            "sprava/verifier-key.txt", _other_key_id)),
        Mutation("swap the key", "other key, checkpoint re-signed, verified with --key",
                 _resign(other), trusted_key=True),
    ]
    return out


def _prepare(pristine: Path, root: Path, number: int, mutation: Mutation) -> Path:
    target = root / f"m{number:04d}"
    shutil.copytree(pristine, target, copy_function=os.link)
    mutation.apply(target)
    if mutation.remanifest:
        _remanifest(target)
    return target


@functools.cache
def _command() -> Any:
    return typer.main.get_command(build_app())


def _cli(args: list[str]) -> tuple[int, dict[str, Any]]:
    """`sprava ARGS` through the real command table, in this process (built once: a new
    process per mutation would spend the test's time starting Python)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            returned = _command().main(args, prog_name="sprava", standalone_mode=False)
            code = returned if isinstance(returned, int) else 0
        except SystemExit as exc:
            code = int(exc.code or 0)
    return code, json.loads(out.getvalue() or "{}")


_DRIVER = """
import importlib.util, io, json, sys
from pathlib import Path
spec = importlib.util.spec_from_file_location("standalone", sys.argv[1])
module = importlib.util.module_from_spec(spec)
sys.modules["standalone"] = module
spec.loader.exec_module(module)
results = {}
for line in sys.stdin:
    path, key = json.loads(line)
    out = io.StringIO()
    code = module.run(Path(path), key=key, as_json=True, out=out, err=io.StringIO())
    results[path] = [code, [f["code"] for f in json.loads(out.getvalue())["findings"]]]
loaded = sorted({name.split(".")[0] for name in sys.modules})
print(json.dumps({"results": results, "loaded": loaded}))
"""


def test_the_case_exports_the_same_way_on_every_back_end(bags: dict[str, Bag], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRAVA_VERIFY_PINS", str(tmp_path / "no-pins"))
    layouts = set()
    for backend, exported in bags.items():
        code, report = _cli(["verify", str(exported.folder), "--key", exported.key, "--json"])
        assert (backend, code, report["findings"], report["key_trusted"]) == (
            backend, 0, [], True)
        layouts.add(tuple(f.split("/")[0] + ("/" + f.rsplit(".", 1)[-1] if "/" in f else "")
                          for f in _files(exported.folder)))
    assert len(layouts) == 1


def test_every_mutation_is_caught(bag: Bag, tmp_path: Path,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPRAVA_VERIFY_PINS", str(tmp_path / "no-pins"))
    code, clean = _cli(["verify", str(bag.folder), "--json"])
    assert (code, clean["findings"]) == (0, [])
    cases = mutations(bag.folder, bag.key)
    prepared = [(m, _prepare(bag.folder, tmp_path, i, m)) for i, m in enumerate(cases)]

    missed_cli = []
    for mutation, path in prepared:
        args = ["verify", str(path), "--json"]
        if mutation.trusted_key:
            args += ["--key", bag.key]
        code, report = _cli(args)
        if code != 1 or not report.get("findings"):
            missed_cli.append(f"{mutation.kind}: {mutation.target} (exit {code})")

    standalone = bag.folder / "tools" / "sprava_verify.py"
    feed = json.dumps([str(bag.folder), None]) + "\n" + "".join(
        json.dumps([str(p), bag.key if m.trusted_key else None]) + "\n" for m, p in prepared)
    done = subprocess.run([sys.executable, "-I", "-B", "-c", _DRIVER, str(standalone)],
                          input=feed, capture_output=True, text=True, timeout=120,
                          check=False, cwd=tmp_path,
                          env={**os.environ, "SPRAVA_VERIFY_PINS": str(tmp_path / "no-pins")})
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert "sprava" not in answer["loaded"]
    results = answer["results"]
    assert results[str(bag.folder)] == [0, []]
    missed_standalone = [f"{m.kind}: {m.target} (exit {results[str(p)][0]})"
                         for m, p in prepared if results[str(p)][0] != 1]

    kinds: dict[str, int] = {}
    for mutation in cases:
        kinds[mutation.kind] = kinds.get(mutation.kind, 0) + 1
    caught = len(cases) - len(set(missed_cli) | set(missed_standalone))
    print(f"\ncase-file mutations: {caught}/{len(cases)} caught "
          f"({100 * caught / len(cases):.0f} %) by both verifiers; by kind: {kinds}")
    assert missed_cli == []
    assert missed_standalone == []
    assert set(kinds) >= {
        "flip a byte in a payload file", "drop a file", "add a file", "edit an event",
        "drop an event", "reorder events", "alter a proof hash", "alter the checkpoint",
        "swap the key"}


def test_a_bag_forged_whole_passes_only_without_a_trusted_key(bag: Bag, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch
                                                              ) -> None:
    """The trust model, pinned: re-signed with another key, a bag agrees with itself; the
    key you hold (--key, or pinned earlier with --pin) is what tells the forgery apart."""
    pins = tmp_path / "pins"
    monkeypatch.setenv("SPRAVA_VERIFY_PINS", str(pins))
    code, report = _cli(["verify", str(bag.folder), "--pin", "--json"])
    assert (code, report["key_trusted"]) == (0, False)
    assert pins.read_text().strip() == bag.key
    forged = tmp_path / "forged"
    shutil.copytree(bag.folder, forged)
    _resign(NoteSigner.generate(bag.key.split("+")[0]))(forged)
    _remanifest(forged)
    code, report = _cli(["verify", str(forged), "--json"])  # the pinned key is used
    assert code == 1
    assert {f["code"] for f in report["findings"]} >= {"key-mismatch", "checkpoint-signature"}
    pins.unlink()
    code, report = _cli(["verify", str(forged), "--json"])
    assert (code, report["key_trusted"]) == (0, False)
