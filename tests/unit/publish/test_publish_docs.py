"""docs/publish.md stays true: its example event, its error codes, its settings."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sprava.domain.custody import decode_leaf
from sprava.publish.build import PUBLISH, publish_event
from sprava.settings import setting_help

ROOT = Path(__file__).resolve().parents[3]
DOC = (ROOT / "docs" / "publish.md").read_text("utf-8")
# Raised only if the database or the code is broken, never by what a user gives.
INTERNAL = {"checkpoint-missing", "bad-coordinates"}


def test_example_event_is_a_canonical_publish_event() -> None:
    [leaf] = [b for b in re.findall(r"```\n(.*?)```", DOC, flags=re.S) if b.startswith("{")]
    body = decode_leaf(leaf.rstrip("\n").encode())
    made = publish_event(data_sha256="0" * 64, size=1, counts={}, persons=[], actor="a",
                         time=datetime.now(UTC))
    assert body["kind"] == PUBLISH
    assert set(body) == set(decode_leaf(made.to_leaf()))


def test_every_error_code_is_documented() -> None:
    raised = set()
    for path in (ROOT / "src" / "sprava" / "publish").glob("*.py"):
        raised |= set(re.findall(r'code="([a-z-]+)"', path.read_text("utf-8")))
    documented = set(re.findall(r"^\| `([a-z-]+)` \| ", DOC, flags=re.M))
    documented -= {"publish_precision_km", "publish_public_sources"}
    assert documented == raised - INTERNAL


def test_settings_are_documented() -> None:
    for name in setting_help():
        if name.startswith("publish_"):
            assert f"`{name}`" in DOC
