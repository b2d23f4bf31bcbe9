"""Queries made safe, plans, ids that order hits, time tokens, snippets: pure parts of
search, without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprava.errors import BadInputError
from sprava.search import documents
from sprava.search.plan import NOTHING, expand, make_plan, prefixes, time_expr
from sprava.search.query import All, Any_, Key, Without, fts5, parse_query, tsquery
from sprava.search.scope import SearchFilters, SearchScope
from sprava.search.snippet import snippet


def test_expressions_in_both_syntaxes() -> None:
    expr = Without(All((Any_((Key("mansk", prefix=True), Key("xminsk"))),
                        Key("hamal", heading=True))), Key("fr"))
    assert fts5(expr) == '((("mansk"* OR "xminsk") AND {head} : "hamal") NOT "fr")'
    assert tsquery(expr) == "(((mansk:* | xminsk) & hamal) & !fr)"
    assert tsquery(Key("ham", prefix=True, heading=True)) == "ham:*"


@pytest.mark.parametrize("bad", ["", "Mansk", "a b", 'a"', "a*", "a:b", "ä", "a" * 201])
def test_a_key_is_only_ever_letters_and_digits(bad: str) -> None:
    with pytest.raises(ValueError, match="not an index key"):
        Key(bad)


def test_query_limits() -> None:
    assert len(parse_query("x " * 16)) == 16
    with pytest.raises(BadInputError, match="more than 16 words"):
        parse_query("x " * 17)
    with pytest.raises(BadInputError, match="longer than 500"):
        parse_query("x" * 501)
    with pytest.raises(BadInputError, match="must be text"):
        parse_query(b"Minsk")
    assert parse_query("\"'()*:&|!{}^-+") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_query_renders_to_plain_syntax(query: str) -> None:
    scope = SearchScope(persons=False, items="all")
    try:
        words = parse_query(query)
    except BadInputError:
        return  # too many words: refused before any expression is made
    plan = make_plan(words, scope, SearchFilters(), scope.kinds())
    for _, expr in plan.tiers:
        rendered = fts5(expr)
        # every quoted string is a key; nothing else is quoted
        assert rendered.count('"') % 2 == 0
        for i, piece in enumerate(rendered.split('"')):
            if i % 2:
                assert piece.isascii()
                assert piece.isalnum()
        assert "\x00" not in tsquery(expr)


def test_scope_and_filters_become_tokens() -> None:
    viewer = SearchScope(persons=False, items="redacted")
    plan = make_plan(parse_query("Minsk"), viewer, SearchFilters(status="verified"),
                     viewer.kinds())
    rendered = fts5(plan.everything)
    assert '"fzredacted"' in rendered
    assert '"fsverified"' in rendered
    assert rendered.endswith('NOT "fr")')
    own = SearchScope(persons=False, items="own", actor="user:anna", catalogue=False)
    plan = make_plan([], own, SearchFilters(), own.kinds())
    assert fts5(plan.everything) == f'"{documents.actor_facet("user:anna")}"'
    everyone = SearchScope(persons=True, items="all", actor="local:x")
    plan = make_plan([], everyone, SearchFilters(kinds=frozenset(
        {"incident", "act", "unit", "person", "claim", "item"})), everyone.kinds())
    assert fts5(plan.everything) == '("fe" NOT "fzredacted")'


def test_time_tokens_of_records_and_of_filters() -> None:
    day = datetime(2020, 8, 9, 21, 0, tzinfo=UTC)
    assert documents.time_facets(day, day) == ["fy2020", "fm202008"]
    long = documents.time_facets(datetime(2019, 5, 1, tzinfo=UTC),
                                 datetime(2021, 12, 31, tzinfo=UTC))
    assert long == ["fy2019", "fy2020", "fy2021", "fl"]
    ancient = documents.time_facets(datetime(1, 1, 1, tzinfo=UTC), day)
    assert ancient[0] == "fy1900"
    assert "fl" in ancient
    short = fts5(time_expr(datetime(2020, 8, 1, tzinfo=UTC), datetime(2020, 9, 1, tzinfo=UTC)))
    assert short == '("fm202008" OR ("fl" AND "fy2020"))'
    wide = fts5(time_expr(datetime(2010, 1, 1, tzinfo=UTC), None))
    assert wide.startswith('("fy2010" OR "fy2011"')
    assert '"fy2100"' in wide


def test_claim_periods_cover_what_their_partial_dates_say() -> None:
    assert documents._period("2019-05", "2021") == (
        datetime(2019, 5, 1, tzinfo=UTC), datetime(2021, 12, 31, 23, 59, 59, tzinfo=UTC))
    assert documents._period("2020-02", "2020-02")[1] == datetime(2020, 2, 29, 23, 59, 59,
                                                                   tzinfo=UTC)
    assert documents._period("2020-12", "2020-12")[1] == datetime(2020, 12, 31, 23, 59, 59,
                                                                   tzinfo=UTC)
    assert documents._period(None, None) == (None, None)
    low, high = documents._period(None, "2020-08-09")
    assert low is not None
    assert low.year == 1
    assert high == datetime(2020, 8, 9, 23, 59, 59, tzinfo=UTC)


def test_ids_order_rows_by_kind_then_id() -> None:
    refs = sorted(str(uuid.uuid4()) for _ in range(50))
    rows = [(kind, ref) for kind in ("act", "claim", "incident", "person", "unit")
            for ref in refs] + [("item", f"{n:064x}") for n in (1, 2**200, 2**255)]
    ordered = sorted(rows, key=lambda r: documents.doc_id(r[0], documents.FULL, r[1]))
    assert ordered == sorted(rows)
    assert documents.doc_id("item", documents.REDACTED, "ab" * 32) > documents.doc_id(
        "item", documents.FULL, "ff" * 32)
    assert documents.doc_id("unit", documents.FULL, "f" * 64) < 2**63


def test_prefixes_are_expanded_into_the_keys_they_stand_for() -> None:
    expr = All((Key("man", prefix=True), Key("ham", prefix=True, heading=True),
                Key("lid", prefix=True), Key("fe")))
    assert prefixes(expr) == {"man", "ham", "lid"}
    out = expand(expr, {"man": ["mansk", "manska"], "ham": None, "lid": []})
    assert fts5(out) == ('(("mansk" OR "manska") AND {head} : "ham"* AND "'
                         + NOTHING + '" AND "fe")')


def test_snippets_start_near_the_first_match_and_mark_the_words() -> None:
    body = " ".join(f"word{i}" for i in range(100)) + " Гродна and more " + "tail " * 50
    groups = parse_query("Hrodna")
    excerpt, marks = snippet(body, groups)
    assert excerpt.startswith("… ")
    assert excerpt.endswith(" …")
    assert [excerpt[s:e] for s, e in marks] == ["Гродна"]
    assert len(excerpt) <= 210
    short, marks = snippet("Разгон у Гродне,\nлюдзі", parse_query("Grodn"))
    assert short == "Разгон у Гродне, людзі"
    assert [short[s:e] for s, e in marks] == ["Гродне"]
    assert snippet("just text", []) == ("just text", ())
