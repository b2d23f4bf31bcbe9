"""docs/catalogue.md stays true: its example leaves, statement table and finding codes."""

from __future__ import annotations

import re
from pathlib import Path

from sprava.catalogue.verify import ORDER
from sprava.domain.catalogue import STATEMENTS, EntityKind
from sprava.domain.custody import decode_leaf

DOC = (Path(__file__).resolve().parents[3] / "docs" / "catalogue.md").read_text("utf-8")


def test_example_leaves_are_canonical_catalogue_events() -> None:
    leaves = [b for b in re.findall(r"```\n(.*?)```", DOC, flags=re.S) if b.startswith("{")]
    bodies = [decode_leaf(leaf.rstrip("\n").encode()) for leaf in leaves]
    assert [b["change"] for b in bodies] == ["approve", "view"]
    assert set(bodies[0]) == {"v", "kind", "time", "actor", "change", "entity", "id",
                              "state_sha256"}
    assert set(bodies[1]) == {"v", "kind", "time", "actor", "change", "entity", "ids"}
    assert {b["kind"] for b in bodies} == {"catalogue"}


def test_statement_table_matches_the_rules() -> None:
    rows = re.findall(r"^\| `(\w+)` \| (\w+) \| (\w+) \| (yes)? *\| (yes)? *\|$", DOC,
                      flags=re.M)
    assert {name: (subject, obj, bool(dated), bool(role))
            for name, subject, obj, dated, role in rows} == {
        s.name: (s.subject.value, s.object.value, s.dated, s.has_role)
        for s in STATEMENTS.values()}


def test_finding_codes_and_entities_are_documented() -> None:
    documented = re.findall(r"^\| `(catalogue-[a-z-]+)` \|", DOC, flags=re.M)
    assert documented == list(ORDER)
    for kind in EntityKind:
        assert f"`{kind.value}`" in DOC
