"""The examples in docs/formats.md are real: they parse and verify as the docs say."""

from __future__ import annotations

import re
from pathlib import Path

from sprava.domain.custody import decode_leaf
from sprava.ledger.note import NoteVerifier, open_checkpoint

FORMATS = Path(__file__).resolve().parents[2] / "docs" / "formats.md"


def _blocks() -> list[str]:
    return re.findall(r"```\n(.*?)```", FORMATS.read_text(encoding="utf-8"), flags=re.S)


def test_example_leaf_is_canonical_and_complete() -> None:
    leaf = next(b for b in _blocks() if b.startswith('{"actor"'))
    body = decode_leaf(leaf.rstrip("\n").encode())
    assert {"v", "kind", "time", "actor", "sha256", "size", "source", "new"} <= set(body)


def test_example_checkpoint_verifies_with_the_example_key() -> None:
    blocks = _blocks()
    note = next(b for b in blocks if "\n— " in b)
    key = next(b for b in blocks if re.fullmatch(r"\S+\+[0-9a-f]{8}\+\S+\n", b))
    checkpoint = open_checkpoint(note, NoteVerifier.parse(key))
    assert checkpoint.size == 3


def test_api_doc_lists_every_path_the_server_serves(tmp_path: Path) -> None:
    """docs/api.md names every path of the served OpenAPI description (and no other)."""
    from sprava.api.app import PREFIX, create_app
    from sprava.instance import init_instance
    from sprava.settings import load_settings

    settings = load_settings(tmp_path / "i", {}, environ={})
    instance, _ = init_instance(settings, origin="docs.sprava.local/api")
    try:
        served = {p.removeprefix(PREFIX) for p in create_app(instance).openapi()["paths"]}
    finally:
        instance.close()
    text = (FORMATS.parent / "api.md").read_text(encoding="utf-8")
    table = text.split("## Endpoints", 1)[1]
    named: set[str] = set()
    for row in re.findall(r"^\| (.*?) \|", table, flags=re.M):
        parts = re.findall(r"`([^`]+)`", row)
        base = ""
        for part in parts:
            if part.startswith("/") and part.count("/") == 1 and base and part[1:2] != "{":
                named.add(base + part)  # `/claims/{claim_id}/submit`, `/withdraw`, …
            else:
                named.add(part)
                base = part.rsplit("/", 1)[0]
    assert served - named == set(), "served but not in docs/api.md"
    assert {n for n in named if n.startswith("/")} - served == set(), "documented, not served"
