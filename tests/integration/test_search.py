"""Search on each real database: every kind found, every filter, every scope, freshness
after every kind of change, spellings across alphabets end to end, hostile queries,
pagination, and concurrent catch-ups."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, event, func, insert, select

from conftest import BACKENDS, PostgresServer, new_instance, stack_overrides
from sprava.backends.db.catalogue_tables import catalogue_change, incident
from sprava.backends.db.engine import read_transaction, write_transaction
from sprava.backends.db.search_tables import search_doc, search_queue
from sprava.backends.db.tables import analysis
from sprava.catalogue import acts, claims, incidents, persons, units
from sprava.errors import SpravaError
from sprava.instance import Instance
from sprava.search import SearchFilters, SearchScope, catch_up, rebuild, search
from sprava.search.indexer import ensure_fresh, freshness
from sprava.store.derive import store_derived
from sprava.store.ingest import Ingestor

ANNA, BORIS = "user:anna", "user:boris"
READER = "local:reader"
EVERYTHING = SearchScope(persons=True, items="all", actor=READER)
NO_PERSONS = SearchScope(persons=False, items="all")
REVIEWERS = claims.Reviewers(frozenset({BORIS}))


@dataclass
class World:
    instance: Instance
    items: dict[str, str]  # file name -> sha256
    incident: str
    other_incident: str
    act: str
    unit: str
    person: str
    person_claim: str
    unit_claim: str  # the act's attribution to the unit


def _ingest(instance: Instance, folder: Path, files: dict[str, bytes], actor: str
            ) -> dict[str, str]:
    folder.mkdir(parents=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    seen: dict[str, str] = {}
    ingestor = Ingestor(instance, source_name="search tests", actor=actor)
    ingestor.run(ingestor.plan([os.fsencode(folder)]),
                 lambda r: seen.__setitem__(r.name.rsplit("/", 1)[-1], r.sha256 or ""))
    return seen


def _build(instance: Instance, tmp_path: Path) -> World:
    items = _ingest(instance, tmp_path / "anna", {
        "Пратэст_Гомель_2020.jpg": b"photo one" * 20,
        "okrestina-queue.mp4": b"video two" * 20}, ANNA)
    items |= _ingest(instance, tmp_path / "boris", {"IMG_4471.jpg": b"photo three" * 20}, BORIS)
    inc = incidents.create_incident(instance, {
        "title": "Разгон шэсця ў Гродне",
        "description": "Супрацоўнікі АМАП збівалі ўдзельнікаў дубінкамі каля плошчы Леніна.",
        "start": "2020-08-16T15:00:00+03:00",
        "place": {"name": "Гродна", "admin_area": "Гродзенская вобласць"},
        "violation_types": ["beating", "violent-dispersal"]}, actor=ANNA)
    other = incidents.create_incident(instance, {
        "title": "Detentions at Okrestina",
        "description": "People held without water for three days.",
        "start": "2021-03-25T10:00:00+03:00",
        "place": {"name": "Minsk", "admin_area": "Minsk"},
        "violation_types": ["inhuman-detention-conditions"]}, actor=ANNA)
    unit = units.create_unit(instance, {
        "names": {"be": "АМАП Гродна", "ru": "ОМОН Гродно", "en": "Hrodna riot police"},
        "type": "OMON", "area_of_operation": "Гродзенская вобласць"}, actor=ANNA)
    act = acts.create_act(instance, {
        "incident_id": inc.id, "type": "beating", "description": "Batons against a cyclist.",
        "victim": {"pseudonym": "V-21", "age_band": "18-25"},
        "perpetrator": {"kind": "unit", "unit_id": unit.id,
                        "sources": [items["IMG_4471.jpg"]], "confidence": "high"}},
        actor=ANNA)
    person = persons.create_person(instance, {
        "name": "Юрий Щербаков", "rank": "major",
        "identifiers": [{"kind": "call_sign", "value": "Berkut-7"}]}, actor=ANNA)
    person_claim = claims.create_claim(instance, {
        "statement": "person_commanded_unit", "subject": {"kind": "person", "id": person.id},
        "object": {"kind": "unit", "id": unit.id}, "valid_from": "2019-05",
        "valid_to": "2021", "sources": [items["IMG_4471.jpg"]], "confidence": "low",
        "comment": "named in the duty roster"}, actor=ANNA, submit=True)
    assert act.perpetrator.claim_id is not None
    return World(instance, items, inc.id, other.id, act.id, unit.id, person.id,
                 person_claim.id, act.perpetrator.claim_id)


@pytest.fixture
def world(instance: Instance, tmp_path: Path) -> World:
    """A world of its own, for tests that change it."""
    return _build(instance, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def shared(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """One world per database for the tests that only read it (searches that show
    persons add view events, which change nothing searchable)."""
    home = tmp_path_factory.mktemp("search")
    server: PostgresServer | None = None
    if request.param == "sqlite":
        url = f"sqlite:///{home / 'sprava.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        name = f"search_{uuid.uuid4().hex[:12]}"
        server.admin(f'CREATE DATABASE "{name}"')
        url = server.url(name)
    inst = new_instance(home / "instance", url, **stack_overrides(request))
    try:
        yield _build(inst, home)
    finally:
        inst.close()
        if server is not None:
            server.admin(f'DROP DATABASE "{name}" WITH (FORCE)')


def _found(instance: Instance, query: str, scope: SearchScope = EVERYTHING,
           **filters: Any) -> list[tuple[str, str]]:
    page = search(instance, query, scope=scope, filters=SearchFilters(**filters), limit=500)
    return [(h.kind, h.id) for h in page.items]


def _code(call: Callable[[], Any]) -> str:
    with pytest.raises(SpravaError) as caught:
        call()
    return caught.value.code


# --- finding -----------------------------------------------------------------------------


def test_every_kind_is_found_by_its_own_words(shared: World) -> None:
    inst = shared.instance
    assert ("incident", shared.incident) in _found(inst, "плошчы Леніна")
    assert ("act", shared.act) in _found(inst, "cyclist")
    assert ("unit", shared.unit) in _found(inst, "riot police")
    assert _found(inst, "Berkut") == [("person", shared.person)]
    assert _found(inst, "duty roster") == [("claim", shared.person_claim)]
    assert _found(inst, "okrestina queue") == [("item", shared.items["okrestina-queue.mp4"])]


def test_hits_show_a_title_a_snippet_and_where_the_words_are(shared: World) -> None:
    page = search(shared.instance, "дубінкамі", scope=EVERYTHING)
    (hit,) = page.items
    assert (hit.kind, hit.id, hit.title) == ("incident", shared.incident, "Разгон шэсця ў Гродне")
    assert "дубінкамі" in hit.snippet
    assert [hit.snippet[s:e] for s, e in hit.highlights] == ["дубінкамі"]
    assert page.total == 1


@pytest.mark.parametrize("query", ["Hrodna", "Grodno", "Гродна", "Гродно", "grodn", "ГРОДНА"])
def test_a_place_in_any_spelling(shared: World, query: str) -> None:
    found = _found(shared.instance, query)
    assert ("incident", shared.incident) in found
    assert ("unit", shared.unit) in found


@pytest.mark.parametrize("query", ["Shcherbakov", "Щербаков", "Ščarbakoŭ", "Szczerbakow",
                                   "Yuriy Shcherbakov", "Iurii", "Jurij", "Юрый"])
def test_a_name_in_any_spelling(shared: World, query: str) -> None:
    assert ("person", shared.person) in _found(shared.instance, query)


def test_file_names_in_any_spelling(shared: World) -> None:
    sha = shared.items["Пратэст_Гомель_2020.jpg"]
    for query in ("Gomel", "Homiel", "Гомель", "protest 2020", "пратэст"):
        assert _found(shared.instance, query) == [("item", sha)], query


def test_closer_spellings_and_headings_rank_first(shared: World) -> None:
    page = search(shared.instance, "Гродна", scope=EVERYTHING)
    scores = [h.score for h in page.items]
    assert scores == sorted(scores, reverse=True)
    assert page.items[0].score == 1.0  # in the title or the name
    # the same tier keeps kind-then-id order
    tiers: dict[float, list[tuple[str, str]]] = {}
    for h in page.items:
        tiers.setdefault(h.score, []).append((h.kind, h.id))
    assert all(v == sorted(v) for v in tiers.values())


def test_different_names_do_not_match(shared: World) -> None:
    assert _found(shared.instance, "Pinsk") == []
    assert _found(shared.instance, "Petrov") == []
    assert _found(shared.instance, "Gomel Hrodna") == []  # every word must match


# --- filters -----------------------------------------------------------------------------


def test_a_query_without_words_lists_the_scope(shared: World) -> None:
    everything = _found(shared.instance, "")
    assert len(everything) == 10  # 2 incidents, act, unit, person, 2 claims, 3 items
    assert everything == sorted(everything)
    assert _found(shared.instance, "!!! ...") == everything
    assert len(_found(shared.instance, "", NO_PERSONS)) == 8


def test_kinds_filter(shared: World) -> None:
    assert _found(shared.instance, "Гродна", kinds=frozenset({"unit"})) == [("unit", shared.unit)]
    assert {k for k, _ in _found(shared.instance, "", kinds=frozenset({"item"}))} == {"item"}
    assert len(_found(shared.instance, "", kinds=frozenset({"item"}))) == 3


def test_time_filters(shared: World) -> None:
    inst = shared.instance
    august = {"since": datetime(2020, 8, 1, tzinfo=UTC), "until": datetime(2020, 9, 1, tzinfo=UTC)}
    found = _found(inst, "", EVERYTHING, **august)
    assert ("incident", shared.incident) in found
    assert ("act", shared.act) in found
    assert ("incident", shared.other_incident) not in found
    assert ("claim", shared.person_claim) in found  # valid 2019-05 to the end of 2021
    assert ("unit", shared.unit) not in found  # a unit has no time
    assert _found(inst, "", since=datetime(2021, 3, 25, 7, tzinfo=UTC),
                  kinds=frozenset({"incident"})) == [("incident", shared.other_incident)]
    assert _found(inst, "", since=datetime(2021, 3, 25, 7, 0, 1, tzinfo=UTC),
                  kinds=frozenset({"incident"})) == []
    assert _found(inst, "", until=datetime(2019, 5, 1, tzinfo=UTC)) == []
    assert ("claim", shared.person_claim) in _found(inst, "", until=datetime(2019, 5, 2,
                                                                                tzinfo=UTC))
    assert ("claim", shared.person_claim) not in _found(inst, "", since=datetime(
        2022, 1, 1, tzinfo=UTC))
    # a long range is looked up by year
    decade = _found(inst, "", since=datetime(2015, 1, 1, tzinfo=UTC),
                    until=datetime(2025, 1, 1, tzinfo=UTC), kinds=frozenset({"incident"}))
    assert sorted(decade) == sorted([("incident", shared.incident),
                                     ("incident", shared.other_incident)])


def test_place_filter_matches_any_spelling_of_the_place(shared: World) -> None:
    for place in ("Hrodna", "Гродно", "grodno"):
        assert sorted(_found(shared.instance, "", place=place)) == sorted([
            ("act", shared.act), ("incident", shared.incident)])
    assert _found(shared.instance, "", place="Minsk") == [("incident", shared.other_incident)]
    assert _found(shared.instance, "Okrestina", place="Гродна") == []


def test_violation_type_filter(shared: World) -> None:
    assert sorted(_found(shared.instance, "", violation_type="beating")) == sorted([
        ("act", shared.act), ("incident", shared.incident)])
    assert sorted(_found(shared.instance, "", violation_type="violent-dispersal")) == sorted([
        ("act", shared.act), ("incident", shared.incident)])  # an act by its incident's types
    assert _found(shared.instance, "", violation_type="inhuman-detention-conditions") == [
        ("incident", shared.other_incident)]


def test_unit_status_and_confidence_filters(world: World) -> None:
    assert sorted(_found(world.instance, "", unit_id=world.unit)) == sorted([
        ("act", world.act), ("claim", world.person_claim), ("claim", world.unit_claim),
        ("incident", world.incident), ("unit", world.unit)])
    # a rejected attribution no longer ties the act (and its incident) to the unit
    claims.reject_claim(world.instance, world.unit_claim, actor=BORIS, rights=REVIEWERS,
                        reason="the video shows another unit")
    assert sorted(_found(world.instance, "", unit_id=world.unit)) == sorted([
        ("claim", world.person_claim), ("claim", world.unit_claim), ("unit", world.unit)])
    inst = world.instance
    assert sorted(_found(inst, "", status="reported")) == sorted([
        ("incident", world.incident), ("incident", world.other_incident)])
    incidents.set_incident_status(inst, world.other_incident, "corroborated", actor=ANNA)
    assert _found(inst, "", status="corroborated") == [("incident", world.other_incident)]
    assert _found(inst, "", status="pending_review") == [("claim", world.person_claim)]
    assert _found(inst, "", status="rejected") == [("claim", world.unit_claim)]
    assert _found(inst, "", confidence="low") == [("claim", world.person_claim)]
    assert _found(inst, "roster", confidence="high") == []


# --- scope -------------------------------------------------------------------------------


def test_persons_and_their_claims_stay_hidden_from_those_who_may_not_see_them(
        shared: World) -> None:
    inst = shared.instance
    for query in ("Shcherbakov", "Berkut", "duty roster", "Юрий"):
        assert _found(inst, query, NO_PERSONS) == [], query
    assert ("claim", shared.person_claim) not in _found(inst, "", NO_PERSONS,
                                                        unit_id=shared.unit)
    assert _found(inst, "", NO_PERSONS, kinds=frozenset({"person"})) == []
    assert ("unit", shared.unit) in _found(inst, "Hrodna", NO_PERSONS)


def test_showing_a_person_is_a_recorded_read(world: World) -> None:
    def views() -> list[tuple[str, str]]:
        with read_transaction(world.instance.engine) as conn:
            return [(r.actor, r.entity_id) for r in conn.execute(
                select(catalogue_change.c.actor, catalogue_change.c.entity_id)
                .where(catalogue_change.c.change == "view"))]

    assert views() == []
    _found(world.instance, "Hrodna", NO_PERSONS)
    assert views() == []
    _found(world.instance, "duty roster")  # a claim about the person names them
    assert views() == [(READER, world.person)]


def test_scope_needs_an_actor_where_it_matters() -> None:
    assert _code(lambda: SearchScope(persons=True, items="all")) == "bad-scope"
    assert _code(lambda: SearchScope(persons=False, items="own")) == "bad-scope"
    assert _code(lambda: SearchScope(persons=False, items="every")) == "bad-scope"  # type: ignore[arg-type]


def test_uploaders_find_only_their_own_uploads(shared: World) -> None:
    own = SearchScope(persons=False, items="own", actor=BORIS, catalogue=False)
    assert _found(shared.instance, "", own) == [("item", shared.items["IMG_4471.jpg"])]
    assert _found(shared.instance, "Gomel", own) == []
    assert _found(shared.instance, "IMG", own) == [("item", shared.items["IMG_4471.jpg"])]
    assert _found(shared.instance, "Hrodna", own) == []  # no catalogue for uploaders
    mixed = SearchScope(persons=False, items="own", actor=ANNA)
    found = _found(shared.instance, "", mixed, kinds=frozenset({"item", "unit"}))
    assert sorted(found) == sorted([("item", shared.items["okrestina-queue.mp4"]),
                                    ("item", shared.items["Пратэст_Гомель_2020.jpg"]),
                                    ("unit", shared.unit)])


def test_readers_of_redacted_copies_find_those_and_nothing_of_the_original(
        world: World, tmp_path: Path) -> None:
    original = world.items["Пратэст_Гомель_2020.jpg"]
    copy = tmp_path / "copy.jpg"
    copy.write_bytes(b"\xff\xd8\xff\xe0 blurred" * 30)
    derived = store_derived(world.instance, original=original, kind="redaction", path=copy,
                            tool="test", settings={"mode": "blur"})
    thumb = tmp_path / "thumb.jpg"
    thumb.write_bytes(b"\xff\xd8\xff\xe0 thumbnail" * 30)
    store_derived(world.instance, original=original, kind="thumbnail", path=thumb,
                  tool="test", settings={})
    viewer = SearchScope(persons=False, items="redacted")
    assert _found(world.instance, "", viewer, kinds=frozenset({"item"})) == [
        ("item", derived.sha256)]
    assert _found(world.instance, "redacted", viewer) == [("item", derived.sha256)]
    for query in ("Gomel", "пратэст", "2020"):  # the original's name is not theirs to see
        assert ("item", derived.sha256) not in _found(world.instance, query, viewer), query
    # and the vault's other readers are not shown the copy in place of its original
    assert _found(world.instance, "Gomel") == [("item", original)]
    assert ("item", derived.sha256) not in _found(world.instance, "", kinds=frozenset({"item"}))
    # viewers read the catalogue, without persons
    assert ("incident", world.incident) in _found(world.instance, "Hrodna", viewer)


# --- freshness ---------------------------------------------------------------------------


def test_an_update_is_found_by_its_new_words_and_not_its_old(world: World) -> None:
    inst = world.instance
    assert ("incident", world.incident) in _found(inst, "шэсця")
    incidents.update_incident(inst, world.incident, {"title": "Dispersal near Lenin square"},
                              actor=BORIS)
    assert ("incident", world.incident) in _found(inst, "Dispersal Lenin")
    assert _found(inst, "шэсця") == []  # not the incident, nor its act, nor claims on it
    assert ("act", world.act) in _found(inst, "Dispersal")  # acts show their incident
    units.update_unit(inst, world.unit, {"names": {"en": "Special unit Almaz"}}, actor=BORIS)
    assert ("claim", world.person_claim) in _found(inst, "Almaz")  # claims name the unit
    assert _found(inst, "OMON Гродно") == []
    persons.update_person(inst, world.person, {"name": "Piotr Kavalioŭ"}, actor=BORIS)
    assert sorted(_found(inst, "Kovalev")) == sorted([("claim", world.person_claim),
                                                      ("person", world.person)])
    assert _found(inst, "Shcherbakov") == []


def test_new_records_and_items_are_found_at_once(world: World, tmp_path: Path) -> None:
    inst = world.instance
    _found(inst, "anything")
    unit = units.create_unit(inst, {"names": {"be": "Унутраныя войскі"}, "type": "troops"},
                             actor=ANNA)
    assert _found(inst, "Unutranyja vojski") == [("unit", unit.id)]
    sha = _ingest(inst, tmp_path / "late", {"Kalinkavichy.mov": b"late" * 40}, ANNA)
    assert _found(inst, "Калінкавічы") == [("item", sha["Kalinkavichy.mov"])]
    # the same content again under another name: one item, found by both names
    again = _ingest(inst, tmp_path / "again", {"second-name.mov": b"late" * 40}, BORIS)
    assert again["second-name.mov"] == sha["Kalinkavichy.mov"]
    assert _found(inst, "second name") == [("item", sha["Kalinkavichy.mov"])]


def _record_metadata(instance: Instance, sha: str, fields: dict[str, Any]) -> None:
    """Store a metadata analysis as the media pipeline does (replace the step's row)."""
    with write_transaction(instance.engine) as conn:
        conn.execute(delete(analysis).where(analysis.c.item_sha256 == sha,
                                            analysis.c.step == "metadata"))
        conn.execute(insert(analysis).values(
            item_sha256=sha, step="metadata", status="done", tool="test",
            result=json.dumps({"fields": fields, "raw": {}}), updated_at=datetime.now(UTC)))


def test_metadata_from_analysis_is_indexed_when_it_lands(world: World) -> None:
    sha = world.items["IMG_4471.jpg"]
    _found(world.instance, "anything")
    _record_metadata(world.instance, sha, {"camera_make": "Canon", "camera_model": "EOS 5D",
                                           "captured_at": "2020-08-16T15:02:11"})
    assert _found(world.instance, "Canon EOS") == [("item", sha)]
    _record_metadata(world.instance, sha, {"camera_make": "Xiaomi"})
    assert _found(world.instance, "Canon") == []
    assert _found(world.instance, "Xiaomi") == [("item", sha)]
    with read_transaction(world.instance.engine) as conn:
        assert conn.execute(select(func.count()).select_from(search_queue)).scalar_one() == 0


def test_nothing_changed_costs_one_read(shared: World) -> None:
    _found(shared.instance, "Hrodna", NO_PERSONS)
    catch_up(shared.instance)  # past the views other tests' searches recorded
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]))

    event.listen(shared.instance.engine, "before_cursor_execute", count)
    try:
        assert ensure_fresh(shared.instance) == 0
    finally:
        event.remove(shared.instance.engine, "before_cursor_execute", count)
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 1
    assert not any("INSERT" in s or "UPDATE" in s or "DELETE" in s for s in statements)


def test_reads_of_persons_do_not_cost_each_search_a_write(world: World) -> None:
    inst = world.instance
    _found(inst, "duty roster")  # shows a person: a view event, a new leaf
    statements: list[str] = []

    def count(*args: Any) -> None:
        statements.append(str(args[2]).upper())

    event.listen(inst.engine, "before_cursor_execute", count)
    try:
        assert ensure_fresh(inst) == 0
    finally:
        event.remove(inst.engine, "before_cursor_execute", count)
    assert not any(w in s for s in statements for w in ("IMMEDIATE", "INSERT", "UPDATE",
                                                          "DELETE", "FOR UPDATE"))
    # and a real change after the view is still seen
    unit = units.create_unit(inst, {"names": {"en": "Almaz"}, "type": "special"}, actor=ANNA)
    assert _found(inst, "Almaz") == [("unit", unit.id)]


def test_rebuilding_gives_the_index_catching_up_built(world: World) -> None:
    def docs() -> list[tuple[Any, ...]]:
        with read_transaction(world.instance.engine) as conn:
            return [tuple(r) for r in conn.execute(select(search_doc).order_by(search_doc.c.id))]

    ensure_fresh(world.instance)
    before = docs()
    assert rebuild(world.instance) == len(before)
    assert docs() == before
    assert catch_up(world.instance) == 0


def test_concurrent_searches_catch_up_once_without_duplicates(world: World) -> None:
    inst = world.instance
    for i in range(20):
        incidents.create_incident(inst, {
            "title": f"Concurrent incident {i}", "start": "2020-09-06T12:00:00Z",
            "place": {"name": "Minsk"}}, actor=ANNA)
    errors: list[BaseException] = []
    totals: list[int] = []
    start = threading.Barrier(8)

    def run() -> None:
        try:
            start.wait()
            totals.append(search(inst, "concurrent", scope=NO_PERSONS).total)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert totals == [20] * 8
    with read_transaction(inst.engine) as conn:
        count = conn.execute(select(func.count()).select_from(search_doc)
                             .where(search_doc.c.kind == "incident")).scalar_one()
        assert count == conn.execute(select(func.count()).select_from(incident)).scalar_one()
        assert freshness(conn).fresh


# --- hostile input and pagination --------------------------------------------------------

HOSTILE = [
    '"', "'", '"unclosed', "a AND", "OR", "NOT NOT", "*", "Minsk*", "(", ")", "((((", "^",
    "NEAR(a b)", "{head}: Minsk", "head:Minsk", "folded : x", "a:*", "!x", "x & y | z",
    "'; DROP TABLE search_doc; --", "Robert'); DROP TABLE incident;--", "1=1 OR 1=1",
    "\x00", "Hrodna\x00Minsk", "\\", "%", "_", "ﬁ", "\u202eHrodna", "\ud800", "😀 Hrodna",
    "x" * 500, "Hrodna " * 16, "-Hrodna", "+Hrodna", "Hrodna\u200b",
]


@pytest.mark.parametrize("query", HOSTILE)
def test_hostile_queries_never_error_nor_inject(shared: World, query: str) -> None:
    page = search(shared.instance, query, scope=EVERYTHING)
    assert page.total == len(page.items)
    with read_transaction(shared.instance.engine) as conn:
        assert conn.execute(select(func.count()).select_from(search_doc)).scalar_one() > 0
        assert conn.execute(select(func.count()).select_from(incident)).scalar_one() == 2


def test_hostile_queries_still_find_what_their_words_say(shared: World) -> None:
    for query in ("'; -- Hrodna", '"Hrodna"', "Hrodna*", "(Hrodna)", "Hrodna OR",
                  "Hrodna\x00", "{}: Hrodna", "\u202eHrodna", "Hrodna:*"):
        assert ("unit", shared.unit) in _found(shared.instance, query), query


@pytest.mark.parametrize(("query", "filters", "code"), [
    ("x" * 501, {}, "bad-query"),
    (" ".join(f"w{i}" for i in range(17)), {}, "bad-query"),
    (None, {}, "bad-query"),
    ("x", {"kinds": frozenset({"case"})}, "bad-filter"),
    ("x", {"kinds": frozenset()}, "bad-filter"),
    ("x", {"since": datetime(2020, 1, 1)}, "bad-filter"),
    ("x", {"since": datetime(2021, 1, 1, tzinfo=UTC),
           "until": datetime(2020, 1, 1, tzinfo=UTC)}, "bad-filter"),
    ("x", {"place": "!!"}, "bad-filter"),
    ("x", {"place": "x" * 201}, "bad-filter"),
    ("x", {"violation_type": "Beating; DROP"}, "bad-filter"),
    ("x", {"unit_id": "1 OR 1=1"}, "bad-filter"),
    ("x", {"status": "approved'"}, "bad-filter"),
    ("x", {"confidence": "certain"}, "bad-filter"),
])
def test_bad_input_is_refused_clearly(shared: World, query: Any, filters: dict[str, Any],
                                      code: str) -> None:
    assert _code(lambda: search(shared.instance, query, scope=EVERYTHING,
                                filters=SearchFilters(**filters))) == code


def test_bad_pages_are_refused(shared: World) -> None:
    for limit, offset in ((0, 0), (501, 0), (10, -1), (True, 0)):
        assert _code(lambda n=limit, o=offset: search(  # type: ignore[misc]
            shared.instance, "x", scope=EVERYTHING, limit=n, offset=o)) == "bad-page"


def test_pages_stitch_into_the_whole_ordered_list(world: World) -> None:
    inst = world.instance
    for i in range(7):
        incidents.create_incident(inst, {
            "title": f"Marš {i}" if i % 2 else f"Марш {i}", "start": "2020-08-30T12:00:00Z",
            "place": {"name": "Minsk"}}, actor=ANNA)
    whole = search(inst, "марш", scope=NO_PERSONS, limit=100)
    assert whole.total == 7
    assert [h.score for h in whole.items] == sorted((h.score for h in whole.items),
                                                    reverse=True)
    pages: list[Any] = []
    for offset in range(0, 9, 3):
        page = search(inst, "марш", scope=NO_PERSONS, limit=3, offset=offset)
        assert (page.total, page.limit, page.offset) == (7, 3, offset)
        pages.extend(page.items)
    assert pages == list(whole.items)
    past = search(inst, "марш", scope=NO_PERSONS, limit=3, offset=50)
    assert (past.items, past.total) == ((), 7)
    again = search(inst, "марш", scope=NO_PERSONS, limit=100)
    assert again == whole  # deterministic


@pytest.fixture
def counted(shared: World) -> Iterator[list[str]]:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(str(args[2]))

    event.listen(shared.instance.engine, "before_cursor_execute", count)
    yield seen
    event.remove(shared.instance.engine, "before_cursor_execute", count)


def test_refused_input_never_reaches_the_database(shared: World,
                                                  counted: list[str]) -> None:
    with pytest.raises(SpravaError):
        search(shared.instance, "x" * 10_000, scope=EVERYTHING)
    with pytest.raises(SpravaError):
        search(shared.instance, "x", scope=EVERYTHING, filters=SearchFilters(place="?"))
    assert counted == []
