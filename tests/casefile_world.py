"""A sample case for the case-file tests, built from real camera photos through the real
services: ingest, a redacted copy (blurred with Pillow and stored as a derived item, as
redaction stores it, without running the face model), two incidents with acts, a unit, a
person, a person claim approved by a second reviewer, a unit claim pending review, a view
of the person, and a case citing it all. Imported by the case-file tests."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from conftest import SAMPLES
from sprava.catalogue import acts, cases, claims, incidents, persons, units
from sprava.instance import Instance
from sprava.store.derive import store_derived
from sprava.store.ingest import Ingestor

ANNA, BORIS, CAROL = "local:anna", "local:boris", "local:carol"
RECIPIENT = "Office of the Prosecutor <Test> & Co"
PHOTOS = [SAMPLES / "exif-py" / "jpg" / name for name in (
    "Canon_40D.jpg", "Nikon_D70.jpg", "Pentax_K10D.jpg", "Canon_DIGITAL_IXUS_400.jpg")]
HOSTILE_TITLE = 'Dispersal at <script>alert("x")</script> Pushkinskaya'


@dataclass
class World:
    instance: Instance
    photos: list[str]  # SHA-256 of the ingested photos, in PHOTOS order
    redacted: str
    case_id: str
    person_id: str
    person_name: str


def build_world(instance: Instance, tmp: Path) -> World:
    seen: dict[str, str] = {}
    ingestor = Ingestor(instance, source_name="volunteer 12")
    ingestor.run(ingestor.plan([os.fsencode(p) for p in PHOTOS]),
                 lambda r: seen.__setitem__(os.path.basename(r.name), r.sha256 or ""))
    photos = [seen[p.name] for p in PHOTOS]

    from PIL import Image, ImageFilter

    blurred = tmp / "blurred.jpg"
    with Image.open(PHOTOS[0]) as picture:
        picture.convert("RGB").filter(ImageFilter.GaussianBlur(6)).save(blurred, "JPEG")
    redacted = store_derived(instance, original=photos[0], kind="redaction", path=blurred,
                             tool="test-blur", settings={"mode": "blur", "radius": 6},
                             actor=ANNA).sha256

    first = incidents.create_incident(instance, {
        "title": HOSTILE_TITLE,
        "description": "Riot police beat people leaving the metro.\nTwo were detained.",
        "start": "2020-08-10T22:40:00+03:00", "end": "2020-08-11T01:00:00+03:00",
        "place": {"name": "Pushkinskaya metro", "admin_area": "Minsk", "lat": 53.9093,
                  "lon": 27.4955, "precision_m": 150},
        "violation_types": ["beating", "arbitrary-detention"]}, actor=ANNA)
    second = incidents.create_incident(instance, {
        "title": "Okrestina", "start": "2020-08-12T00:00:00+03:00",
        "place": {"name": "Okrestina detention centre", "admin_area": "Minsk"}}, actor=ANNA)
    unit = units.create_unit(instance, {"names": {"en": "Minsk OMON", "be": "АМАП Мінск"},
                                        "type": "riot police"}, actor=ANNA)
    person = persons.create_person(instance, {
        "name": "S. Sidorov", "rank": "captain",
        "identifiers": [{"kind": "badge_number", "value": "0412"}]}, actor=ANNA)
    acts.create_act(instance, {
        "incident_id": first.id, "type": "beating", "description": "Beaten with batons.",
        "victim": {"pseudonym": "V-17", "age_band": "18-25",
                   "consent": {"share_with_prosecutors": True}},
        "perpetrator": {"kind": "unit", "unit_id": unit.id, "sources": [photos[0]],
                        "confidence": "medium"},
        "evidence": [photos[0], photos[1]]}, actor=ANNA)
    acts.create_act(instance, {"incident_id": second.id, "type": "torture-ill-treatment",
                               "evidence": [photos[2]]}, actor=ANNA)
    command = claims.create_claim(instance, {
        "statement": "person_commanded_unit", "subject": {"kind": "person", "id": person.id},
        "object": {"kind": "unit", "id": unit.id}, "valid_from": "2020-08",
        "sources": [photos[1]], "confidence": "high"}, actor=ANNA, submit=True)
    claims.approve_claim(instance, command.id, actor=BORIS,
                         rights=claims.Reviewers(frozenset({BORIS})), reason="badge matches")
    present = claims.create_claim(instance, {
        "statement": "unit_present_at_incident", "subject": {"kind": "unit", "id": unit.id},
        "object": {"kind": "incident", "id": first.id}, "sources": [photos[0]],
        "confidence": "medium"}, actor=ANNA, submit=True)
    persons.get_person(instance, person.id, actor=CAROL)
    case = cases.create_case(instance, {
        "title": "Pushkinskaya <b>and</b> Okrestina", "recipient": RECIPIENT,
        "description": "For the prosecutor.", "incidents": [first.id, second.id],
        "claims": [command.id, present.id], "items": [photos[3]]}, actor=ANNA)
    return World(instance, photos, redacted, case.id, person.id, person.name)
