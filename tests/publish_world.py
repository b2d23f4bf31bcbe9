"""An instance filled with what the public site must never show, for the publish tests.

Built through the real services: camera photos carrying GPS (unredacted originals, from
a volunteer), public documents (from sources configured as public) and private ones (an
insider, a volunteer); units; persons at every level, with identifiers; commanders whose
command is approved and publicly sourced (the only ones the site may name), approved but
privately sourced, publicly sourced but only pending, rejected, or sourced partly to a
private document; victims' pseudonyms in acts; incidents at every status, with exact
coordinates. Imported by the publish tests; the names are invented.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from conftest import SAMPLES
from sprava.catalogue import acts, claims, incidents, persons, units
from sprava.instance import Instance
from sprava.store.ingest import Ingestor

ANNA, BORIS = "local:anna", "local:boris"
REVIEW = claims.Reviewers(frozenset({BORIS}))
PUBLIC_SOURCES = "Security Force Monitor, Court records (public)"
GPS_PHOTOS = [SAMPLES / "exif-py" / "jpg" / "gps" / name
              for name in ("DSCN0010.jpg", "DSCN0021.jpg")]
# What the team would copy from the photos' EXIF (DSCN0010: 43°28'2.814" N 11°53'6.456" E).
PHOTO_LAT, PHOTO_LON = 43.467448, 11.885127
MINSK_LAT, MINSK_LON = 53.909312, 27.495541
BREST_LAT, BREST_LON = 52.087263, 23.688831
HOSTILE = '<img src="https://tracker.example/pixel.gif"> <script>fetch("https://x.example")</script>'


@dataclass
class World:
    instance: Instance
    shown_commander: str  # the one person the site may name
    unit_names: dict[str, str]  # published units: id → English name
    hidden_unit: str  # a unit tied only to an unverified incident
    verified: list[str]
    restricted: list[str] = field(default_factory=list)  # names, pseudonyms, identifiers
    originals: list[str] = field(default_factory=list)  # SHA-256 of unredacted items
    file_names: list[str] = field(default_factory=list)
    coordinates: list[tuple[float, float]] = field(default_factory=list)


def _ingest(instance: Instance, paths: list[Path], source: str) -> list[str]:
    seen: dict[str, str] = {}
    ingestor = Ingestor(instance, source_name=source)
    ingestor.run(ingestor.plan([os.fsencode(p) for p in paths]),
                 lambda r: seen.__setitem__(os.path.basename(r.name), r.sha256 or ""))
    return [seen[p.name] for p in paths]


def _doc(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def _verify(instance: Instance, incident_id: str, up_to: str) -> None:
    for status in ("corroborated", "verified"):
        incidents.set_incident_status(instance, incident_id, status, actor=ANNA)
        if status == up_to:
            return


def _claim(instance: Instance, statement: str, subject: tuple[str, str],
           obj: tuple[str, str], sources: list[str], confidence: str, *,
           review: str = "approve", **extra: str) -> str:
    made = claims.create_claim(instance, {
        "statement": statement, "subject": {"kind": subject[0], "id": subject[1]},
        "object": {"kind": obj[0], "id": obj[1]}, "sources": sources,
        "confidence": confidence, **extra}, actor=ANNA, submit=review != "draft")
    if review == "approve":
        claims.approve_claim(instance, made.id, actor=BORIS, rights=REVIEW)
    elif review == "reject":
        claims.reject_claim(instance, made.id, actor=BORIS, rights=REVIEW,
                            reason="the source does not show it")
    return made.id


def build_world(instance: Instance, tmp: Path) -> World:
    photos = _ingest(instance, GPS_PHOTOS, "volunteer 7")
    docs = tmp / "documents"
    [sfm] = _ingest(instance, [_doc(docs, "sfm-minsk-omon.csv",
                                    "unit,commander\nMinsk OMON,Hryhoryi Zaslavets\n")],
                    "Security Force Monitor")
    [ruling] = _ingest(instance, [_doc(docs, "ruling-2021-117.txt",
                                       "Court ruling 2021/117, public record.\n")],
                       "Court records (public)")
    [roster] = _ingest(instance, [_doc(docs, "roster-leak-0812.txt",
                                       "Roster, do not share. Company 3.\n")], "insider 4")

    omon = units.create_unit(instance, {
        "names": {"en": "Minsk OMON", "be": "АМАП Мінска", "ru": "ОМОН Минска"},
        "type": "riot police", "area_of_operation": "Minsk"}, actor=ANNA)
    gubopik = units.create_unit(instance, {"names": {"en": "GUBOPiK"},
                                           "type": "organised crime police"}, actor=ANNA)
    brest = units.create_unit(instance, {"names": {"en": "Brest OMON"},
                                         "type": "riot police"}, actor=ANNA)

    def person(name: str, rank: str, idents: tuple[tuple[str, str], ...] = ()) -> str:
        return persons.create_person(instance, {
            "name": name, "rank": rank,
            "identifiers": [{"kind": k, "value": v} for k, v in idents]}, actor=ANNA).id

    shown = person("Hryhoryi Zaslavets", "colonel", (("call_sign", "Granit-One"),))
    private_cmd = person("Ihar Vialichka", "lieutenant colonel")
    pending_cmd = person("Pavel Marozau", "major")
    rejected_cmd = person("Siarhei Zhukouski", "major")
    mixed_cmd = person("Dzianis Lapatka", "lieutenant colonel")
    hidden_unit_cmd = person("Сцяпан Крывашэеў", "полковник")
    member = person("Yury Kastsiukevich", "captain", (("badge_number", "BN-774201"),))
    officer = person("Uladzimir Nestsiarenka", "sergeant",
                     (("badge_number", "BN-550913"), ("call_sign", "Sokal-77"),
                      ("vehicle_plate", "AB 4471-7")))

    first = incidents.create_incident(instance, {
        "title": "Dispersal at Pushkinskaya",
        "description": "Riot police beat people leaving the metro.\n\nSeveral were detained "
                       "and taken away in buses. " + HOSTILE,
        "start": "2020-08-10T22:40:00+03:00", "end": "2020-08-11T01:00:00+03:00",
        "place": {"name": "Pushkinskaya metro, exit 3", "admin_area": "Minsk",
                  "lat": MINSK_LAT, "lon": MINSK_LON, "precision_m": 50},
        "violation_types": ["beating", "arbitrary-detention"]}, actor=ANNA)
    second = incidents.create_incident(instance, {
        "title": 'Okrestina <b>detention</b> "centre"',
        "description": "Detainees were held for days in overcrowded cells.",
        "start": "2020-08-12T03:00:00+03:00",
        "place": {"name": "Okrestina street 36", "admin_area": "Minsk",
                  "lat": PHOTO_LAT, "lon": PHOTO_LON, "precision_m": 10},
        "violation_types": ["torture-ill-treatment"]}, actor=ANNA)
    third = incidents.create_incident(instance, {
        "title": "March in Brest", "description": "Water cannon against a march.",
        "start": "2020-09-06T15:00:00+03:00",
        "place": {"name": "Savetskaja street 12", "admin_area": "Brest",
                  "lat": BREST_LAT, "lon": BREST_LON, "precision_m": 25},
        "violation_types": ["use-of-weapons"]}, actor=ANNA)
    fourth = incidents.create_incident(instance, {
        "title": "Detentions in Hrodna", "start": "2020-11-15T12:00:00+03:00",
        "place": {"name": "Hrodna centre", "admin_area": "Hrodna"},
        "violation_types": ["arbitrary-detention"]}, actor=ANNA)
    _verify(instance, first.id, "verified")
    _verify(instance, second.id, "verified")
    _verify(instance, third.id, "corroborated")

    acts.create_act(instance, {
        "incident_id": first.id, "type": "beating", "description": "Beaten with batons "
        "by Swallow-4471's door.",
        "victim": {"pseudonym": "Swallow-4471", "age_band": "18-25",
                   "consent": {"share_with_prosecutors": True}},
        "perpetrator": {"kind": "unit", "unit_id": omon.id, "sources": [photos[0]],
                        "confidence": "medium"},
        "evidence": [photos[0]]}, actor=ANNA)
    detention = acts.create_act(instance, {
        "incident_id": first.id, "type": "arbitrary-detention",
        "victim": {"pseudonym": "Лебедзь-19", "age_band": "child"},
        "perpetrator": {"kind": "person", "person_id": officer, "sources": [photos[1]],
                        "confidence": "high"},
        "evidence": [photos[1]]}, actor=ANNA)
    claims.approve_claim(instance, detention.perpetrator.claim_id or "", actor=BORIS,
                         rights=REVIEW)
    acts.create_act(instance, {
        "incident_id": second.id, "type": "torture-ill-treatment",
        "victim": {"pseudonym": "Kestrel Blue", "age_band": "older"},
        "perpetrator": {"kind": "unit", "unit_id": gubopik.id, "sources": [roster],
                        "confidence": "low"}}, actor=ANNA)
    acts.create_act(instance, {
        "incident_id": third.id, "type": "use-of-weapons",
        "victim": {"pseudonym": "Heron-8812"}}, actor=ANNA)

    _claim(instance, "unit_present_at_incident", ("unit", omon.id), ("incident", first.id),
           [photos[0], sfm], "high")
    _claim(instance, "unit_present_at_incident", ("unit", omon.id), ("incident", second.id),
           [ruling], "medium", review="pending")  # submitted: reported
    _claim(instance, "unit_present_at_incident", ("unit", brest.id), ("incident", third.id),
           [ruling], "high")
    _claim(instance, "person_commanded_unit", ("person", shown), ("unit", omon.id),
           [sfm, ruling], "high", valid_from="2019-06", valid_to="2021")
    _claim(instance, "person_commanded_unit", ("person", private_cmd), ("unit", omon.id),
           [photos[0]], "high", valid_from="2021")
    _claim(instance, "person_commanded_unit", ("person", pending_cmd), ("unit", gubopik.id),
           [sfm], "medium", review="pending")
    _claim(instance, "person_commanded_unit", ("person", rejected_cmd), ("unit", gubopik.id),
           [ruling], "medium", review="reject")
    _claim(instance, "person_commanded_unit", ("person", mixed_cmd), ("unit", gubopik.id),
           [sfm, roster], "high", valid_from="2020")
    _claim(instance, "person_commanded_unit", ("person", hidden_unit_cmd), ("unit", brest.id),
           [sfm], "high")
    _claim(instance, "person_member_of_unit", ("person", member), ("unit", omon.id),
           [sfm], "high", role="deputy commander")
    _claim(instance, "person_present_at_incident", ("person", officer), ("incident", first.id),
           [ruling], "high")
    del fourth

    return World(
        instance=instance, shown_commander="Hryhoryi Zaslavets",
        unit_names={omon.id: "Minsk OMON", gubopik.id: "GUBOPiK"}, hidden_unit=brest.id,
        verified=[first.id, second.id],
        restricted=["Ihar Vialichka", "Pavel Marozau", "Siarhei Zhukouski", "Dzianis Lapatka",
                    "Сцяпан Крывашэеў", "Yury Kastsiukevich", "Uladzimir Nestsiarenka",
                    "BN-774201", "BN-550913", "Sokal-77", "AB 4471-7", "Granit-One",
                    "Swallow-4471", "Лебедзь-19", "Kestrel Blue", "Heron-8812",
                    "Brest OMON", "Roster, do not share"],
        originals=[*photos, roster],
        file_names=[p.name for p in GPS_PHOTOS] + ["roster-leak-0812.txt",
                                                    "sfm-minsk-omon.csv",
                                                    "ruling-2021-117.txt"],
        coordinates=[(MINSK_LAT, MINSK_LON), (PHOTO_LAT, PHOTO_LON), (BREST_LAT, BREST_LON),
                     (43.467448, 11.885127), (43.467082, 11.884538)])
