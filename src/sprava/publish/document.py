"""The site's data as one JSON document, ``data/public.json``: what every page shows.

The publication's custody event commits to this document by its SHA-256, so that what
was made public on a given day can be proven later from the ledger. It holds only what
:class:`~sprava.publish.public.Snapshot` holds, which is only what the allow-list let
through: no record id of a person, no item digest, no exact place.
"""

from __future__ import annotations

import json
from typing import Any

from sprava.publish.public import Link, PublicIncident, PublicUnit, Snapshot

FORMAT = "sprava-public/1"


def _link(link: Link, *, unit: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"unit" if unit else "incident":
                           link.unit_id if unit else link.incident_id}
    out.update(confidence=str(link.confidence),
               review="reviewed" if link.reviewed else "reported")
    return out


def _incident(x: PublicIncident) -> dict[str, Any]:
    place = None if x.place is None else {"lat": x.place.lat, "lon": x.place.lon,
                                          "cell_km": x.place.cell_km}
    return {"id": x.id, "title": x.title, "narrative": x.narrative,
            "start": x.start.isoformat(), "end": None if x.end is None else x.end.isoformat(),
            "region": x.region, "place": place, "violation_types": list(x.violation_types),
            "acts": [{"type": kind, "count": n} for kind, n in x.acts],
            "units": [_link(link, unit=True) for link in x.links]}


def _unit(u: PublicUnit) -> dict[str, Any]:
    return {"id": u.id, "names": dict(sorted(u.names.items())), "type": u.type,
            "area_of_operation": u.area_of_operation,
            "verified_incidents": len(u.links), "reviewed_incidents": u.reviewed,
            "incidents": [_link(link, unit=False) for link in u.links],
            "commanders": [{"name": c.name, "from": c.valid_from, "to": c.valid_to,
                            "confidence": str(c.confidence), "sources": list(c.sources)}
                           for c in u.commanders]}


def public_document(snapshot: Snapshot, *, origin: str, published_at: str) -> bytes:
    """The document's exact bytes (UTF-8 JSON, keys in a fixed order, one final newline)."""
    f = snapshot.figures
    doc = {
        "format": FORMAT,
        "origin": origin,
        "published_at": published_at,
        "as_of_ledger_size": snapshot.head,  # the data was read at this size
        "precision_km": snapshot.precision_km,
        "figures": {
            "incidents": f.total,
            "by_status": dict(f.by_status),
            "by_month": [{"month": m, **{s: f.by_month[s][i] for s in f.by_month}}
                         for i, m in enumerate(f.months)],
            "by_region": [{"region": r, "incidents": n} for r, n in f.by_region],
            "by_violation_type": [{"type": c, "incidents": n} for c, n in f.by_violation],
        },
        "violation_types": {code: dict(sorted(labels.items()))
                            for code, labels in sorted(snapshot.labels.items())},
        "incidents": [_incident(x) for x in snapshot.incidents],
        "units": [_unit(u) for u in snapshot.units],
    }
    return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")
