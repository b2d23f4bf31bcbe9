"""The publisher reads through a pinned allow-list of columns and never loads whole
records: adding a column to the site is a decision made here, not an accident."""

from __future__ import annotations

import ast
from pathlib import Path

from sprava.publish.public import READS

PUBLISH = Path(__file__).resolve().parents[3] / "src" / "sprava" / "publish"

ALLOWED = {
    "incident": {"id", "start_at", "end_at", "admin_area", "status", "title", "description",
                 "lat", "lon", "precision_m"},
    "incident_violation": {"incident_id", "code"},
    "act": {"id", "incident_id", "type"},
    "claim": {"id", "statement", "subject_id", "object_id", "confidence", "status",
              "valid_from", "valid_to"},
    "claim_source": {"claim_id", "item_sha256"},
    "item_name": {"item_sha256", "source_id"},
    "source": {"id", "name"},
    "unit": {"id", "type", "area_of_operation"},
    "unit_name": {"unit_id", "lang", "name"},
    "person": {"id", "name"},
    "vocabulary_term": {"code", "labels"},
}
# Columns that must never reach the site: victims, act narratives and evidence, persons'
# particulars, items and what they say about themselves, exact place names.
NEVER = {("act", c) for c in ("victim_pseudonym", "victim_age_band", "description",
                              "consent_publish_anonymised", "perpetrator_person_id",
                              "perpetrator_description")} | {
    ("person", c) for c in ("rank", "role", "notes")} | {
    ("incident", "place_name"), ("item_name", "name"), ("item_name", "name_raw"),
    ("claim", "comment"), ("claim", "author"), ("claim", "reviewer")}


def test_the_columns_read_are_exactly_the_allowed_ones() -> None:
    read: dict[str, set[str]] = {}
    for columns in READS.values():
        for column in columns:
            read.setdefault(column.table.name, set()).add(column.name)  # type: ignore[attr-defined]
    assert read == ALLOWED
    assert not {(t, c) for t, cs in read.items() for c in cs} & NEVER


def test_the_publisher_names_no_restricted_column_outside_the_guard() -> None:
    """Only guard.py, which checks that restricted names are *absent*, reads them."""
    forbidden = {"victim_pseudonym", "victim_age_band", "person_identifier", "rank",
                 "notes", "place_name", "analysis", "derived_item", "ledger_leaf.c.data"}
    for path in sorted(PUBLISH.glob("*.py")):
        if path.name == "guard.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)} | {
            n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert not names & forbidden, f"{path.name} names {names & forbidden}"


def test_no_whole_record_loader_is_used() -> None:
    """The catalogue services' loaders return whole records (victims, descriptions,
    persons' particulars); the publisher writes its own narrow queries instead."""
    for path in sorted(PUBLISH.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported = {a.name for a in node.names}
                assert not (node.module == "sprava.catalogue" and imported & {
                    "acts", "persons", "incidents", "claims", "units", "cases",
                    "exchange"}), f"{path.name} imports {imported}"
                assert not node.module.startswith(("sprava.catalogue.acts",
                                                   "sprava.catalogue.persons",
                                                   "sprava.catalogue.incidents",
                                                   "sprava.catalogue.claims",
                                                   "sprava.catalogue.units",
                                                   "sprava.media", "sprava.store")), (
                    f"{path.name} imports {node.module}")
