"""Reading Security Force Monitor style CSV: its column names and plain ones, its dates
with zeros for unknown parts, and every bad cell named by row and column."""

from __future__ import annotations

import pytest

from sprava.catalogue.sfm_model import gather
from sprava.catalogue.sfm_read import read_sheet, source_group
from sprava.domain.catalogue import Confidence
from sprava.errors import BadInputError, ConflictError


def _csv(*lines: str, sep: str = ",") -> bytes:
    return "\r\n".join(line.replace(",", sep) for line in lines).encode("utf-8")


def test_plain_headers_and_semicolons_are_accepted() -> None:
    sheet = read_sheet(_csv("Unit ID,Unit Name,Person ID,Person Name,Person Role,"
                            "First Cited Date,Last Cited Date,Confidence,Source",
                            "u1,АМАП,p1,Іван,Commander,2019,2020-03,HIGH,Report 1", sep=";"),
                       "plain.csv")
    [row] = sheet.rows
    assert (row.number, row.get("unit_name"), row.get("role")) == (2, "АМАП", "Commander")
    assert (row.get("posting_first"), row.posting_confidence) == ("2019", Confidence.HIGH)
    assert row.sources == {"all": [("Source", "Report 1")]}
    [posting] = gather(sheet).postings
    assert (posting.statement, posting.role) == ("person_commanded_unit", None)


@pytest.mark.parametrize(("cells", "expected"), [
    ("2019-00-00,,,", "2019"), ("2019-05-00,,,", "2019-05"), ("2019-05-07,,,", "2019-05-07"),
    (",2019,5,0", "2019-05"), (",2019,0,0", "2019"), (",2019,12,31", "2019-12-31"),
    (",,,", None)])
def test_sfm_dates_with_unknown_parts(cells: str, expected: str | None) -> None:
    base = "person:posting_first_cited_date"
    sheet = read_sheet(_csv(f"unit:id:admin,unit:name,{base},{base}:year,{base}:month,"
                            f"{base}:day", f"u1,Unit,{cells}"), "dates.csv")
    assert sheet.rows[0].get("posting_first") == expected


def test_related_unit_is_the_parent_id_unless_an_id_column_is_given() -> None:
    download = read_sheet(_csv("unit:id:admin,unit:name,unit:related_unit",
                               "u2,Child,u1"), "wwic.csv")
    assert download.rows[0].get("parent_id") == "u1"
    research = read_sheet(_csv("unit:id:admin,unit:name,unit:related_unit_id:admin,"
                               "unit:related_unit", "u2,Child,u1,Parent name"), "sheet.csv")
    assert (research.rows[0].get("parent_id"), research.rows[0].get("parent_name")) == (
        "u1", "Parent name")


def test_columns_sprava_never_reads_are_listed() -> None:
    sheet = read_sheet(_csv("unit:id:admin,unit:name,person_extra:account_id,"
                            "person_extra:date_of_birth,Phone,person:home_phone:source",
                            "u1,Unit,vk.com/x,1970-01-01,+375,+375 29"), "extra.csv")
    assert sheet.ignored == ["person_extra:account_id", "person_extra:date_of_birth", "Phone",
                             "person:home_phone:source"]
    assert "vk.com/x" not in repr(sheet.rows)
    assert "+375" not in repr(sheet.rows)


@pytest.mark.parametrize(("lines", "message"), [
    (("unit:id:admin,unit:name,person:posting_last_cited_date", "u1,Unit,2019-13"),
     "row 2, column 'person:posting_last_cited_date': is not a calendar date"),
    (("unit:id:admin,unit:name", "u 1,Unit"), "row 2, column 'unit:id:admin': not an id"),
    (("unit:id:admin,unit:name", ",Unit"), "row 2, column 'unit:id:admin': every row"),
    (("unit:id:admin,unit:name,person:name", "u1,Unit,Іван"),
     "row 2, column 'person:id:admin': the row names a person but not their id"),
    (("unit:id:admin,unit:name,person:posting:confidence", "u1,Unit,sure"),
     "row 2, column 'person:posting:confidence'"),
    (("unit:id:admin,unit:name,unit:related_unit_first_cited_date,"
      "unit:related_unit_last_cited_date", "u1,Unit,2020,2019"),
     "row 2, column 'unit:related_unit_last_cited_date': ends (2019) before"),
    (("unit:id:admin,unit:name", "u1,Unit,surplus"), "row 2: more cells than the header"),
    (("unit:id:admin,unit:name", "u1,Unit\x00"), "row 2, column 'unit:name': holds control"),
])
def test_bad_cells_are_named_by_row_and_column(lines: tuple[str, ...], message: str) -> None:
    with pytest.raises(BadInputError, match="nothing was imported") as caught:
        read_sheet(_csv(*lines), "bad.csv")
    assert caught.value.code == "sfm-bad-row"
    assert message in caught.value.message


def test_every_bad_row_is_counted() -> None:
    with pytest.raises(BadInputError) as caught:
        read_sheet(_csv("unit:id:admin,unit:name", "u1,", "u2,Fine", "u3,"), "bad.csv")
    assert "row 2, column 'unit:name'" in caught.value.message
    assert "and 1 more problem(s): row 4, column 'unit:name'" in caught.value.message


@pytest.mark.parametrize(("lines", "code"), [
    (("unit:name,person:name", "Unit,Іван"), "sfm-missing-column"),
    (("unit:id:admin,unit id,unit:name", "u1,u1,Unit"), "sfm-duplicate-column"),
    (("unit:id:admin,unit:name", '"u1,Unit'), "bad-csv"),
    ((), "sfm-missing-column"),
])
def test_bad_files_are_refused(lines: tuple[str, ...], code: str) -> None:
    with pytest.raises(BadInputError) as caught:
        read_sheet(_csv(*lines), "bad.csv")
    assert caught.value.code == code


def test_rows_that_contradict_each_other_are_refused() -> None:
    named_twice = read_sheet(_csv("unit:id:admin,unit:name,person:id:admin,person:name",
                                  "u1,Unit,p1,Іван", "u1,Unit,p1,Пётр"), "twice.csv")
    with pytest.raises(BadInputError, match="row 3, column 'person:name': person p1") as c:
        gather(named_twice)
    assert c.value.code == "sfm-conflict"
    loop = read_sheet(_csv("unit:id:admin,unit:name,unit:related_unit_id:admin",
                           "u1,One,u2", "u2,Two,u1"), "loop.csv")
    with pytest.raises(ConflictError, match="lead back"):
        gather(loop)


def test_postings_and_parent_links() -> None:
    sheet = read_sheet(_csv(
        "unit:id:admin,unit:name,unit:related_unit_id:admin,unit:related_unit:name,"
        "unit:related_unit_first_cited_date,person:id:admin,person:name,person:posting_role,"
        "person:posting_title,person:posting:source",
        "u2,Child,u1,Parent,2010,p1,Іван,Командир,,A",
        "u2,Child,u1,Parent,,p2,Пётр,,Deputy head,B",
        "u2,Child,u1,Parent,,p1,Іван,Командир,,A"), "links.csv")
    found = gather(sheet)
    assert [(p.statement, p.subject, p.role) for p in found.postings] == [
        ("person_commanded_unit", "p1", None), ("person_member_of_unit", "p2", "Deputy head")]
    assert [(p.subject, p.object, p.first) for p in found.parents] == [("u2", "u1", "2010")]
    assert (found.units["u1"].stub, found.units["u1"].name) == (True, "Parent")
    assert found.units["u2"].parent == "u1"


@pytest.mark.parametrize(("header", "group"), [
    ("person:posting_role:source", "posting"), ("person:name:source", "person"),
    ("unit:related_unit:source", "parent"), ("unit:name:source", "unit"),
    ("Source", "all"), ("sources", "all"), ("unit:name", None), ("resource", None)])
def test_source_columns_are_grouped_by_what_they_support(header: str,
                                                         group: str | None) -> None:
    assert source_group(header) == group
