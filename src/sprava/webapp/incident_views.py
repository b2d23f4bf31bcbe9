"""Incidents over time and in space, with nothing from elsewhere: a timeline grouped by
month, and the incidents that have coordinates plotted on a plain latitude/longitude
plot (an SVG drawn on the server; no map tiles, no outline of any country), each with
the table of the same points beside it for screen readers and for checking."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from xml.sax.saxutils import escape, quoteattr

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from sprava.accounts.roles import Capability
from sprava.catalogue import incidents
from sprava.domain.catalogue import MAX_PAGE, Incident
from sprava.webapp.page import HEADERS, Formatter, _, language, render
from sprava.webapp.visitor import PageRoute, VisitorDep, instance_of, require

router = APIRouter(route_class=PageRoute, include_in_schema=False)
WIDTH, HEIGHT, PAD = 720, 480, 48


def _all(request: Request) -> list[Incident]:
    return list(incidents.list_incidents(instance_of(request), limit=MAX_PAGE).items)


@router.get("/incidents/timeline", response_class=HTMLResponse)
def timeline(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_READ)
    found = sorted(_all(request), key=lambda i: i.start)
    fmt = Formatter(language(request).code)
    months: list[tuple[str, list[Incident]]] = []
    for incident in found:
        start = incident.start.astimezone(UTC)
        label = fmt.month(start)
        if not months or months[-1][0] != label:
            months.append((label, []))
        months[-1][1].append(incident)
    return render(request, "timeline.html", title=_("Timeline of incidents"), months=months,
                  shown=len(found))


def _placed(found: Sequence[Incident]) -> list[Incident]:
    return [i for i in found if i.place.lat is not None and i.place.lon is not None]


def _bounds(points: Sequence[Incident]) -> tuple[float, float, float, float]:
    lats = [float(i.place.lat or 0) for i in points] or [0.0]
    lons = [float(i.place.lon or 0) for i in points] or [0.0]
    south, north, west, east = min(lats), max(lats), min(lons), max(lons)
    margin_lat = max((north - south) * 0.1, 0.01)
    margin_lon = max((east - west) * 0.1, 0.01)
    return south - margin_lat, north + margin_lat, west - margin_lon, east + margin_lon


def plot(points: Sequence[Incident], title: str, desc: str) -> str:
    """The points on a plain plot, longitude across and latitude up (equirectangular,
    scaled to fit): enough to see where incidents cluster, without any map data."""
    south, north, west, east = _bounds(points)
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD

    def x(lon: float) -> float:
        return PAD + (lon - west) / (east - west) * inner_w

    def y(lat: float) -> float:
        return PAD + (north - lat) / (north - south) * inner_h

    body = [f'<rect x="{PAD}" y="{PAD}" width="{inner_w}" height="{inner_h}" fill="#ffffff" '
            f'stroke="#8a8676"/>']
    for step in range(5):
        lon = west + (east - west) * step / 4
        lat = south + (north - south) * step / 4
        body.append(f'<line x1="{x(lon):.1f}" y1="{PAD}" x2="{x(lon):.1f}" '
                    f'y2="{HEIGHT - PAD}" stroke="#e0ddd3"/>')
        body.append(f'<text x="{x(lon):.1f}" y="{HEIGHT - PAD + 18}" text-anchor="middle">'
                    f'{lon:.3f}</text>')
        body.append(f'<line x1="{PAD}" y1="{y(lat):.1f}" x2="{WIDTH - PAD}" y2="{y(lat):.1f}" '
                    f'stroke="#e0ddd3"/>')
        body.append(f'<text x="{PAD - 6}" y="{y(lat) + 4:.1f}" text-anchor="end">'
                    f'{lat:.3f}</text>')
    for incident in points:
        lat, lon = float(incident.place.lat or 0), float(incident.place.lon or 0)
        body.append(f'<circle cx="{x(lon):.1f}" cy="{y(lat):.1f}" r="6" fill="#0072b2" '
                    f'fill-opacity="0.75" stroke="#1d1d1f" data-id={quoteattr(incident.id)}>'
                    f'<title>{escape(incident.title)}</title></circle>')
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
            f'width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
            f'aria-labelledby="plot-title plot-desc" font-family="system-ui, sans-serif" '
            f'font-size="12" fill="#1d1d1f">\n<title id="plot-title">{escape(title)}</title>\n'
            f'<desc id="plot-desc">{escape(desc)}</desc>\n'
            f'<rect width="100%" height="100%" fill="#f6f5f1"/>\n' + "\n".join(body)
            + "\n</svg>\n")


@router.get("/incidents/map", response_class=HTMLResponse)
def incident_map(request: Request, principal: VisitorDep) -> HTMLResponse:
    require(principal, Capability.CATALOGUE_READ)
    found = _all(request)
    placed = _placed(found)
    return render(request, "map.html", title=_("Incidents on a plot of coordinates"),
                  placed=placed, unplaced=len(found) - len(placed))


@router.get("/incidents/map.svg")
def incident_map_svg(request: Request, principal: VisitorDep) -> Response:
    require(principal, Capability.CATALOGUE_READ)
    say = language(request).gettext
    svg = plot(_placed(_all(request)), say(_("Incidents by coordinates")),
               say(_("Each point is an incident at its latitude and longitude; the table "
                     "on the page lists the same points.")))
    return Response(svg, media_type="image/svg+xml", headers=HEADERS)
