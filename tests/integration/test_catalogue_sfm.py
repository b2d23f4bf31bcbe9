"""Bulk import of units and commanders from a Security Force Monitor style CSV, on each
real database: units, persons and claims submitted for review, the file itself as the
source of every claim, no duplicates on a second import, nothing stored on a bad row."""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from sprava.audit import verify_instance
from sprava.backends.db.engine import read_transaction
from sprava.backends.db.tables import item, ledger_leaf
from sprava.catalogue import claims, persons, units
from sprava.catalogue.sfm import import_sfm
from sprava.catalogue.verify import verify_catalogue
from sprava.domain.catalogue import ClaimStatus, EntityKind
from sprava.errors import SpravaError
from sprava.instance import Instance

ANNA, BORIS = "local:anna", "local:boris"

# Security Force Monitor's own column names, as its research sheets and WhoWasInCommand
# downloads use them, plus two columns Sprava must never read.
HEADER = [
    "unit:id:admin", "unit:name", "unit:other_names", "unit:classification", "unit:country",
    "unit:related_unit_id:admin", "unit:related_unit", "unit:related_unit_first_cited_date",
    "unit:related_unit:source", "unit:area_ops_name", "person:id:admin", "person:name",
    "person:posting_rank", "person:posting_role", "person:posting_title",
    "person:posting_first_cited_date", "person:posting_last_cited_date",
    "person:posting:source", "person:posting:confidence", "person_extra:account_type",
    "person_extra:account_id",
]
ROWS = [
    ["9a1f-mvd", "Міністэрства ўнутраных спраў", "МВД", "Police", "BY", "", "", "", "",
     "Belarus", "", "", "", "", "", "", "", "", "", "", ""],
    ["9a1f-omon", "Мінскі АМАП", "ОМОН ГУВД Мингорисполкома;Minsk OMON", "Police;Special",
     "BY", "9a1f-mvd", "Міністэрства ўнутраных спраў", "2010", "Указ №12, с. 3", "Мінск",
     "p-0001", "Дзмітрый Балаба", "Палкоўнік", "Commander", "",
     "2012-00-00", "2020-11-00", "Report A, p. 4", "High", "vk", "vk.com/someone"],
    ["9a1f-omon", "Мінскі АМАП", "", "Police", "BY", "9a1f-mvd", "", "", "", "Minsk region",
     "p-0002", "Іван Кубракоў", "Маёр", "Deputy Commander", "", "2019-05", "2020",
     "=HYPERLINK(\"http://x.invalid\")", "low", "", ""],
    ["9a1f-spec", "Спецпадраздзяленне", "", "", "", "9a1f-omon", "", "", "", "", "p-0001",
     "Дзмітрый Балаба", "Генерал-маёр", "Командир", "", "2021", "", "Report B", "", "", ""],
]


def _write(path: Path, rows: list[list[str]], header: list[str] = HEADER) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _counts(instance: Instance) -> tuple[int, int]:
    with read_transaction(instance.engine) as conn:
        leaves = conn.execute(select(func.count()).select_from(ledger_leaf)).scalar_one()
        items = conn.execute(select(func.count()).select_from(item)).scalar_one()
    return int(leaves), int(items)


def _clean(instance: Instance) -> None:
    report = verify_instance(instance)
    assert report.ok, report.findings
    assert verify_catalogue(instance) == []


def test_units_and_commanders_arrive_for_review(instance: Instance, tmp_path: Path) -> None:
    path = _write(tmp_path / "sfm_belarus.csv", ROWS)
    summary = import_sfm(instance, path, actor=ANNA, lang="be")
    assert (summary.created["units"], summary.created["persons"]) == (3, 2)
    assert summary.created["claims"] == 5  # 3 postings, 2 parent links
    assert summary.ignored_columns == ["person_extra:account_type", "person_extra:account_id"]
    assert summary.rows == 4
    sha = summary.item_sha256

    by_name = {u.names["be"]: u for u in units.list_units(instance).items}
    omon = by_name["Мінскі АМАП"]
    ministry = by_name["Міністэрства ўнутраных спраў"]
    assert (omon.parent_id, by_name["Спецпадраздзяленне"].parent_id) == (ministry.id, omon.id)
    assert (omon.type, omon.area_of_operation) == ("Police / Special", "Мінск; Minsk region")
    assert omon.notes is not None
    assert omon.notes.splitlines()[0] == "Security Force Monitor unit: 9a1f-omon"
    assert "Minsk OMON" in omon.notes

    found = persons.list_persons(instance, actor=ANNA).items
    balaba = next(p for p in found if p.name == "Дзмітрый Балаба")
    assert (balaba.rank, balaba.role) == ("Генерал-маёр", "Командир")  # the latest posting
    assert "vk.com" not in str(found)  # the account columns were never read

    made = claims.list_claims(instance).items
    assert {c.status for c in made} == {ClaimStatus.PENDING_REVIEW}  # never approved
    assert {c.sources for c in made} == {(sha,)}  # the file itself is the source
    command = next(c for c in made if c.statement == "person_commanded_unit"
                   and c.object_id == omon.id)
    assert (command.subject_id, command.valid_from, command.valid_to, command.confidence) == (
        balaba.id, "2012", "2020-11", "high")
    assert command.comment is not None
    assert "person:posting:source: Report A, p. 4" in command.comment
    deputy = next(c for c in made if c.statement == "person_member_of_unit")
    assert (deputy.role, deputy.confidence) == ("Deputy Commander", "low")
    assert deputy.comment is not None
    assert '=HYPERLINK("http://x.invalid")' in deputy.comment  # kept as text
    parent = next(c for c in made if c.statement == "unit_subordinate_to_unit"
                  and c.subject_id == omon.id)
    assert (parent.object_id, parent.valid_from, parent.subject_kind) == (
        ministry.id, "2010", EntityKind.UNIT)
    assert claims.list_memberships(instance, unit_id=omon.id).total == 0  # not reviewed yet

    before = _counts(instance)
    again = import_sfm(instance, path, actor=BORIS, lang="be")
    assert sum(again.created.values()) == sum(again.updated.values()) == 0
    assert (again.skipped["units"], again.skipped["persons"], again.skipped["claims"]) == (
        3, 2, 5)
    assert _counts(instance) == (before[0] + 1, before[1])  # one more ingest event, no item

    newer = _write(tmp_path / "sfm_belarus_v2.csv", [*ROWS, [
        "9a1f-omon", "Мінскі АМАП", "", "", "", "", "", "", "", "", "p-0003", "Максім Гамоля",
        "Маёр", "", "Deputy Commander", "2021-02-03", "", "", "medium", "", ""]])
    third = import_sfm(instance, newer, actor=BORIS, lang="en")
    assert (third.created["units"], third.created["persons"], third.created["claims"]) == (
        0, 1, 1)  # only what is new; the statements already claimed stand
    assert units.get_unit(instance, omon.id).names == {"be": "Мінскі АМАП",
                                                       "en": "Мінскі АМАП"}
    assert third.updated["units"] == 3  # each gained a name in the new language
    _clean(instance)


def _refused(instance: Instance, path: Path) -> SpravaError:
    before = _counts(instance)
    with pytest.raises(SpravaError) as caught:
        import_sfm(instance, path, actor=ANNA)
    assert _counts(instance) == before  # not even the file was stored
    return caught.value


def test_bad_rows_are_named_and_nothing_is_stored(instance: Instance, tmp_path: Path) -> None:
    def variant(name: str, change: Callable[[list[list[str]]], Any],
                header: list[str] = HEADER) -> Path:
        rows = [list(r) for r in ROWS]
        change(rows)
        return _write(tmp_path / name, rows, header)

    bad_date = _refused(instance, variant(
        "date.csv", lambda rows: rows[2].__setitem__(15, "2019-13")))
    assert bad_date.code == "sfm-bad-row"
    assert "row 4, column 'person:posting_first_cited_date'" in bad_date.message

    renamed = _refused(instance, variant(
        "renamed.csv", lambda rows: rows[2].__setitem__(1, "Іншы АМАП")))
    assert renamed.code == "sfm-conflict"
    assert "row 4, column 'unit:name'" in renamed.message

    orphan = _refused(instance, variant(
        "orphan.csv", lambda rows: rows[3].__setitem__(5, "9a1f-nowhere")))
    assert orphan.code == "unit-not-found"
    assert "row 5" in orphan.message

    loop = _refused(instance, variant("loop.csv", lambda rows: rows[0].__setitem__(
        5, "9a1f-spec")))
    assert loop.code == "unit-cycle"

    no_ids = _refused(instance, variant("no-ids.csv", lambda rows: None,
                                        ["unit name", *HEADER[1:]]))
    assert no_ids.code == "sfm-duplicate-column"  # "unit name" and "unit:name" both

    cut = [h for h in HEADER if h != "unit:id:admin"]
    missing = _refused(instance, _write(tmp_path / "cut.csv", [r[1:] for r in ROWS], cut))
    assert missing.code == "sfm-missing-column"

    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(",".join(HEADER[:2]).encode() + b"\r\nu1,Stra\xdfe\r\n")
    assert _refused(instance, latin1).code == "bad-encoding"
    assert _refused(instance, tmp_path / "absent.csv").code == "not-found"
    assert _counts(instance) == (0, 0)
