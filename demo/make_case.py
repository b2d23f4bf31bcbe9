"""Catalogue the demo's media and prepare a case for a prosecutor; prints the case's id.

Run after the demo media are ingested (``make demo`` does both). Through the same
services the API uses, it records an incident at Pushkinskaya with one act (the victim
only as a pseudonym), the unit said to be there, a claim sourced to the photos that a
second person reviews and approves, and a case for the prosecutor's office that cites
them. Every step is a custody event in the ledger. No person is named: the demo needs
none, and a case file carries persons only when the case cites them.

Usage: python demo/make_case.py MEDIA_FOLDER INSTANCE_FOLDER
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

from sprava.catalogue import acts, cases, claims, incidents, units
from sprava.instance import open_instance
from sprava.settings import load_settings

AUTHOR, REVIEWER = "local:demo-investigator", "local:demo-coordinator"
RECIPIENT = "Office of the Prosecutor"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def make_case(media: Path, home: Path) -> str:
    photos = sorted((media / "2020-08-10 Pushkinskaya").glob("IMG_*.png"))
    if not photos:
        raise SystemExit(f"no demo photos in {media}: run demo/make_media.py and ingest first")
    shas = [_sha256(p) for p in photos]
    statement = _sha256(media / "statement-witness-W7.txt")
    instance = open_instance(load_settings(home))
    try:
        incident = incidents.create_incident(instance, {
            "title": "Dispersal at Pushkinskaya metro",
            "description": "Riot police without insignia detained three people near the "
                           "metro exit and beat one of them on the ground.",
            "start": "2020-08-10T22:40:00+03:00", "end": "2020-08-10T23:30:00+03:00",
            "place": {"name": "Pushkinskaya metro", "admin_area": "Minsk",
                      "lat": 53.9093, "lon": 27.4955, "precision_m": 200},
            "violation_types": ["beating", "arbitrary-detention"]}, actor=AUTHOR)
        unit = units.create_unit(instance, {
            "names": {"en": "Minsk OMON", "be": "АМАП Мінск", "ru": "ОМОН Минск"},
            "type": "riot police"}, actor=AUTHOR)
        acts.create_act(instance, {
            "incident_id": incident.id, "type": "beating",
            "description": "Beaten with batons while held on the ground.",
            "victim": {"pseudonym": "V-1", "age_band": "18-25",
                       "consent": {"share_with_prosecutors": True}},
            "perpetrator": {"kind": "unit", "unit_id": unit.id, "sources": shas[:1],
                            "confidence": "medium"},
            "evidence": [*shas, statement]}, actor=AUTHOR)
        present = claims.create_claim(instance, {
            "statement": "unit_present_at_incident",
            "subject": {"kind": "unit", "id": unit.id},
            "object": {"kind": "incident", "id": incident.id},
            "sources": shas, "confidence": "medium"}, actor=AUTHOR, submit=True)
        claims.approve_claim(instance, present.id, actor=REVIEWER,
                             rights=claims.Reviewers(frozenset({REVIEWER})),
                             reason="uniforms and vehicles match the unit's")
        case = cases.create_case(instance, {
            "title": "Pushkinskaya, 10 August 2020", "recipient": RECIPIENT,
            "description": "Beating and detentions at the metro exit.",
            "incidents": [incident.id], "claims": [present.id]}, actor=AUTHOR)
        return case.id
    finally:
        instance.close()


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    print(make_case(Path(sys.argv[1]), Path(sys.argv[2])))
