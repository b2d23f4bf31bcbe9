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
