"""The violation-type vocabulary Sprava ships: well formed, in the four UI languages."""

from __future__ import annotations

import json
from importlib import resources

from sprava.catalogue.vocabulary import shipped_terms


def test_shipped_vocabulary_is_well_formed() -> None:
    terms = shipped_terms()
    codes = [t.code for t in terms]
    assert len(codes) == len(set(codes))
    for term in terms:
        assert {"en", "be", "ru", "uk"} <= set(term.labels), term.code
        assert term.description
        assert term.origin == "shipped"


def test_design_vocabulary_is_covered() -> None:
    """shared/DESIGN.md names these violation types."""
    assert {"arbitrary-detention", "beating", "torture-ill-treatment", "use-of-weapons",
            "sexual-violence", "enforced-disappearance"} <= {t.code for t in shipped_terms()}


def test_file_is_the_source() -> None:
    raw = json.loads((resources.files("sprava.catalogue") / "data" / "violations.json")
                     .read_text("utf-8"))
    assert raw["vocabulary"] == "violation-types"
    assert [t["code"] for t in raw["terms"]] == [t.code for t in shipped_terms()]
