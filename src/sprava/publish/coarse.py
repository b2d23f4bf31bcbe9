"""Coarse places: a point shown only as the centre of the grid cell it falls in.

The public site must never say where exactly something happened: an exact place can
lead to a victim's home, a witness's window, the flat a video was filmed from. So a
place is snapped to a fixed grid whose cells are at least ``km`` across in both
directions, and only the cell's centre is ever written out. Every point of a cell gives
the same output, digit for digit, so the output carries no information about where in
the cell the point was, however many decimals are printed.

The grid: rows of equal height in latitude, a whole number of them from pole to pole;
each row is cut into a whole number of equal cells in longitude, as many as fit while
every cell stays at least ``km`` wide at the row's edge farthest from the equator (where
a degree of longitude is shortest). Rows that touch a pole are one cell wide.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sprava.errors import BadInputError

#: Kilometres in a degree of latitude at its shortest (at the equator), so that a row is
#: never lower than asked.
KM_PER_DEGREE_LAT = 110.574
#: Kilometres in a degree of longitude on the equator (times cos(latitude) elsewhere).
KM_PER_DEGREE_LON = 111.320


@dataclass(frozen=True)
class CoarsePlace:
    """The centre of a grid cell, and the size of the cell (km)."""

    lat: float
    lon: float
    cell_km: float
    decimals: int

    def lat_text(self) -> str:
        return f"{self.lat:.{self.decimals}f}"

    def lon_text(self) -> str:
        return f"{self.lon:.{self.decimals}f}"


@dataclass(frozen=True)
class Cell:
    """One cell of the grid, in degrees."""

    south: float
    north: float
    west: float
    east: float


def _check(lat: float, lon: float, km: float) -> None:
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90
            and -180 <= lon <= 180):
        raise BadInputError(f"not a place on the globe: {lat}, {lon}", code="bad-coordinates")
    if not (math.isfinite(km) and km > 0):
        raise BadInputError(f"not a cell size: {km} km", code="bad-coordinates")


def cell_of(lat: float, lon: float, km: float) -> Cell:
    """The cell of the ``km`` grid that holds (lat, lon); raises BadInputError
    ``bad-coordinates`` for a point off the globe or a size ≤ 0."""
    _check(lat, lon, km)
    rows = max(1, math.floor(180 * KM_PER_DEGREE_LAT / km))
    lat_step = 180 / rows
    row = min(rows - 1, math.floor((lat + 90) / lat_step))
    south = -90 + row * lat_step
    north = min(90.0, -90 + (row + 1) * lat_step)
    farthest = max(abs(south), abs(north))
    width = KM_PER_DEGREE_LON * math.cos(math.radians(farthest))  # km in a degree, there
    columns = max(1, math.floor(360 * width / km)) if width > 1e-9 else 1
    lon_step = 360 / columns
    column = min(columns - 1, math.floor((lon + 180) / lon_step))
    return Cell(south, north, -180 + column * lon_step, -180 + (column + 1) * lon_step)


def coarsen(lat: float, lon: float, km: float, precision_m: float | None = None
            ) -> CoarsePlace:
    """The centre of the cell of a grid of ``km`` cells that holds (lat, lon).

    ``precision_m`` (the radius within which the true place lies, as recorded) widens the
    cells when it is coarser than ``km``: the output never claims more than is known.
    Raises BadInputError ``bad-coordinates`` for a point off the globe or a size ≤ 0.
    """
    _check(lat, lon, km)
    if precision_m is not None and math.isfinite(precision_m) and precision_m > 0:
        km = max(km, 2 * precision_m / 1000)
    cell = cell_of(lat, lon, km)
    step = min(cell.north - cell.south, cell.east - cell.west)
    decimals = max(0, math.ceil(-math.log10(step)))
    return CoarsePlace(round((cell.south + cell.north) / 2, decimals),
                       round((cell.west + cell.east) / 2, decimals), km, decimals)
