"""docs/exchange.md stays true: its file and column tables, the SFM column mapping and the
example export leaf are what the code writes and reads."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from sprava.catalogue.exchange import EXPORT, export_event
from sprava.catalogue.exchange_csv import TABLES
from sprava.catalogue.sfm_read import COLUMNS, COMMANDER_ROLES
from sprava.domain.custody import decode_leaf

DOC = (Path(__file__).resolve().parents[3] / "docs" / "exchange.md").read_text("utf-8")


def _table(heading: str) -> list[list[list[str]]]:
    """The rows of the first table after ``heading``, each cell as its backticked words."""
    lines = DOC.split(heading, 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    rows: list[str] = []
    for line in lines[start + 2:]:  # less the header and its rule
        if not line.startswith("|"):
            break
        rows.append(line.strip("|"))
    return [[re.findall(r"`([^`]+)`", cell) for cell in row.split(" | ")] for row in rows]


def test_every_csv_file_and_column_is_documented() -> None:
    rows = _table("### The CSV form")
    assert {row[0][0]: tuple(row[1]) for row in rows} == dict(TABLES)


def test_every_sfm_column_name_is_documented_in_order() -> None:
    rows = _table("## Units and commanders from Security Force Monitor data")
    assert [tuple(row[1]) for row in rows] == list(COLUMNS.values())


def test_commander_roles_are_documented() -> None:
    section = DOC.split("**What is made**", 1)[1].split("**Importing again**", 1)[0]
    documented = {r.casefold() for r in re.findall(r"`([^`]+)`", section)}
    assert COMMANDER_ROLES - documented == set()


def test_the_example_leaf_is_what_an_export_records() -> None:
    [leaf] = [b for b in re.findall(r"```\n(.*?)```", DOC, flags=re.S)
              if b.startswith('{"actor"')]
    body = decode_leaf(leaf.rstrip("\n").encode())
    made = decode_leaf(export_event(
        fmt="json", includes_persons=True, counts={}, sha256="0" * 64, size=1, actor="a",
        time=datetime(2024, 1, 1, tzinfo=UTC)).to_leaf())
    assert body["kind"] == made["kind"] == EXPORT
    assert set(body) == set(made)
