"""Input schemas: strict, normalising, and precise about what is wrong."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from sprava.catalogue import schema
from sprava.domain.catalogue import Confidence, IdentifierKind, PerpetratorKind, Place
from sprava.errors import BadInputError

UUID = "8d6c3f5e-2b1a-4c3d-9e8f-0123456789ab"
OTHER = "1d6c3f5e-2b1a-4c3d-9e8f-0123456789ab"
SHA = "ab" * 32
BASE = {"title": " Dispersal ", "start": "2020-08-10T22:40:00+03:00",
        "place": {"name": "Pushkinskaya", "admin_area": "Minsk"}}


def _code(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(BadInputError) as caught:
        call(*args, **kwargs)
    return caught.value.code


def test_incident_is_normalised() -> None:
    values = schema.incident_input({**BASE, "violation_types": ["beating", "beating",
                                                                "arbitrary-detention"]})
    assert values["title"] == "Dispersal"
    assert values["start"] == datetime(2020, 8, 10, 19, 40, tzinfo=UTC)
    assert values["place"] == Place("Pushkinskaya", "Minsk")
    assert values["violation_types"] == ("arbitrary-detention", "beating")


@pytest.mark.parametrize(("change", "code"), [
    ({"start": "2020-08-10T22:40:00"}, "bad-time"),
    ({"start": "10.08.2020"}, "bad-time"),
    ({"start": 1597088400}, "bad-time"),
    ({"title": ""}, "empty-field"),
    ({"title": "a\x00b"}, "bad-field"),
    ({"title": "two\nlines"}, "bad-field"),
    ({"title": "x" * 501}, "bad-field"),
    ({"title": None}, "missing-field"),
    ({"place": {"name": "x", "lat": 53.9}}, "bad-coordinates"),
    ({"place": {"name": "x", "lat": 53.9, "lon": 27.5}}, "precision-required"),
    ({"place": {"name": "x", "lat": 91, "lon": 27.5, "precision_m": 10}}, "bad-field"),
    ({"place": {"name": "x", "lat": float("nan"), "lon": 27.5, "precision_m": 10}},
     "bad-field"),
    ({"place": {"name": "x", "lat": True, "lon": 27.5, "precision_m": 10}}, "bad-field"),
    ({"place": {"name": "x", "lat": 1, "lon": 2, "precision_m": 0}}, "bad-field"),
    ({"violation_types": ["Beating"]}, "bad-code"),
    ({"violation_types": "beating"}, "bad-field"),
    ({"status": "verified"}, "unknown-field"),
    ({"id": UUID}, "unknown-field"),
])
def test_incident_refusals(change: dict[str, Any], code: str) -> None:
    assert _code(schema.incident_input, {**BASE, **change}) == code


def test_incident_end_before_start_is_refused() -> None:
    values = schema.incident_input({**BASE, "end": "2020-08-10T18:00:00Z"})
    assert _code(schema.check_incident_times, values["start"], values["end"]) == "bad-period"


def test_partial_update_needs_nothing_but_checks_what_is_given() -> None:
    assert schema.incident_input({}, partial=True) == {}
    assert _code(schema.incident_input, {"start": "nope"}, partial=True) == "bad-time"


@pytest.mark.parametrize(("given", "stored"), [
    ("child", "child"), ("adult", "adult"), ("older", "older"), ("unknown", "unknown"),
    ("18-25", "18-25"), ("07-12", "7-12"), ("60+", "60+"),
])
def test_age_bands(given: str, stored: str) -> None:
    victim = schema.victim({"pseudonym": "V-1", "age_band": given}, "victim")
    assert victim is not None
    assert victim.age_band == stored


@pytest.mark.parametrize("band", ["teen", "25-18", "0-200", "121+", "18", "-5", ""])
def test_bad_age_bands(band: str) -> None:
    data = {"pseudonym": "V-1", "age_band": band}
    if band == "":
        victim = schema.victim(data, "victim")  # empty means not known
        assert victim is not None
        assert victim.age_band == "unknown"
        return
    assert _code(schema.victim, data, "victim") == "bad-age-band"


def test_consent_is_refused_unless_given() -> None:
    victim = schema.victim({"pseudonym": "V-1", "consent": {"share_with_prosecutors": True}},
                           "victim")
    assert victim is not None
    assert victim.consent.state() == {"publish_anonymised": False,
                                      "share_with_prosecutors": True,
                                      "share_with_international_mechanisms": False}
    assert _code(schema.victim, {"pseudonym": "V", "consent": {"publish_anonymised": "yes"}},
                 "victim") == "bad-field"


def test_perpetrator_forms() -> None:
    assert schema.perpetrator(None, "p").kind is PerpetratorKind.UNKNOWN
    unknown = schema.perpetrator({"kind": "unknown", "description": "black balaclavas"}, "p")
    assert unknown.description == "black balaclavas"
    unit = schema.perpetrator({"kind": "unit", "unit_id": UUID.upper(),
                               "sources": ["sha256:" + SHA.upper()], "confidence": "high"}, "p")
    assert (unit.target_id, unit.sources, unit.confidence) == (UUID, (SHA,), Confidence.HIGH)
    assert _code(schema.perpetrator, {"kind": "person", "person_id": UUID,
                                      "confidence": "low"}, "p") == "missing-field"
    assert _code(schema.perpetrator, {"kind": "person", "person_id": UUID, "sources": [],
                                      "confidence": "low"}, "p") == "sources-required"
    assert _code(schema.perpetrator, {"kind": "unit", "person_id": UUID, "sources": [SHA],
                                      "confidence": "low"}, "p") == "unknown-field"
    assert _code(schema.perpetrator, {"kind": "officer"}, "p") == "bad-choice"


def test_person_identifiers() -> None:
    values = schema.person_input({"name": "I. Ivanov", "identifiers": [
        {"kind": "vehicle_plate", "value": "1234 AB-7"}, {"kind": "badge_number", "value": "77"},
        {"kind": "badge_number", "value": "77"}]})
    assert [(i.kind, i.value) for i in values["identifiers"]] == [
        (IdentifierKind.BADGE_NUMBER, "77"), (IdentifierKind.VEHICLE_PLATE, "1234 AB-7")]
    assert _code(schema.person_input, {"name": "I", "identifiers": [
        {"kind": "face_embedding", "value": "x"}]}) == "bad-choice"


@pytest.mark.parametrize(("value", "result"), [
    ("2020", "2020"), ("2020-08", "2020-08"), ("2020-08-09", "2020-08-09"),
    (date(2020, 8, 9), "2020-08-09"), (None, None),
])
def test_partial_dates(value: Any, result: str | None) -> None:
    assert schema.partial_date(value, "d") == result


@pytest.mark.parametrize("value", ["2020-13", "2020-02-30", "20", "2020/08", 2020, "2020-8"])
def test_bad_partial_dates(value: Any) -> None:
    assert _code(schema.partial_date, value, "d") == "bad-date"


@pytest.mark.parametrize(("start", "end", "ok"), [
    ("2019", "2021-03", True), ("2020-05", "2020", True), ("2020-05-01", "2020-05-01", True),
    ("2021", "2020-12", False), ("2020-06", "2020-05-31", False),
])
def test_periods_compare_as_far_as_known(start: str, end: str, ok: bool) -> None:
    if ok:
        schema.check_period(start, end, "p")
    else:
        assert _code(schema.check_period, start, end, "p") == "bad-period"


def _claim(**change: Any) -> dict[str, Any]:
    return {"statement": "person_commanded_unit", "subject": {"kind": "person", "id": UUID},
            "object": {"kind": "unit", "id": OTHER}, "sources": [SHA], "confidence": "medium",
            **change}


def _shape(data: dict[str, Any]) -> None:
    values = schema.claim_input(data)
    schema.check_claim_shape(values.pop("statement"), values.pop("subject"),
                             values.pop("object"), values)


@pytest.mark.parametrize(("change", "code"), [
    ({"subject": {"kind": "unit", "id": UUID}}, "statement-mismatch"),
    ({"object": {"kind": "person", "id": UUID}}, "statement-mismatch"),
    ({"statement": "unit_subordinate_to_unit", "subject": {"kind": "unit", "id": OTHER}},
     "statement-mismatch"),
    ({"statement": "person_committed_act", "object": {"kind": "act", "id": OTHER},
      "valid_from": "2020"}, "dates-not-applicable"),
    ({"role": "driver"}, "role-not-applicable"),
    ({"valid_from": "2021", "valid_to": "2019"}, "bad-period"),
    ({"sources": []}, "sources-required"),
    ({"sources": ["nope"]}, "bad-digest"),
    ({"confidence": "certain"}, "bad-choice"),
    ({"statement": "person_lives_at"}, "bad-choice"),
    ({"subject": {"kind": "case", "id": UUID}}, "bad-choice"),
    ({"subject": {"kind": "person", "id": "42"}}, "bad-id"),
    ({"author": "me"}, "unknown-field"),
    ({"status": "approved"}, "unknown-field"),
])
def test_claim_refusals(change: dict[str, Any], code: str) -> None:
    assert _code(_shape, _claim(**change)) == code


def test_claim_shapes_that_hold() -> None:
    _shape(_claim(valid_from="2019", valid_to="2021-03"))
    _shape(_claim(statement="person_member_of_unit", role="deputy commander"))
    _shape(_claim(statement="unit_subordinate_to_unit", subject={"kind": "unit", "id": UUID}))


def test_claim_update_may_not_change_what_it_is_about() -> None:
    for key in ("statement", "subject", "object"):
        assert _code(schema.claim_input, {key: "x"}, partial=True) == "unknown-field"
    assert schema.claim_input({"confidence": "high"}, partial=True) == {
        "confidence": Confidence.HIGH}


def test_names_and_codes() -> None:
    assert schema.names({"ru": "ОМОН", "be": "АМАП"}, "n") == {"be": "АМАП", "ru": "ОМОН"}
    assert _code(schema.names, {}, "n") == "bad-field"
    assert _code(schema.names, {"Belarusian": "x"}, "n") == "bad-language"
    assert _code(schema.vocabulary_code, "Bad Code", "c") == "bad-code"
    assert schema.digests(["sha256:" + SHA, SHA], "d") == (SHA,)


def test_text_is_nfc() -> None:
    """One spelling per name, so that search and comparison see the same letters."""
    assert schema.text(" Минскии\u0306 ", "t") == "Минский"
    assert schema.text("Мазыру\u0306", "t") == "Мазырў"
    assert schema.optional_text("  ", "t") is None


def test_non_objects_are_refused() -> None:
    assert _code(schema.incident_input, ["title"]) == "bad-field"
    assert _code(schema.incident_input, {1: "x"}) == "bad-field"
