"""Coarse places: every point of a cell gives the same output, and cells are never
smaller than the configured precision."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sprava.errors import BadInputError
from sprava.publish.coarse import KM_PER_DEGREE_LAT, KM_PER_DEGREE_LON, cell_of, coarsen

lats = st.floats(min_value=-90, max_value=90, allow_nan=False)
lons = st.floats(min_value=-180, max_value=180, allow_nan=False)
sizes = st.sampled_from([1.0, 2.5, 10.0, 25.0, 100.0, 1000.0])


@settings(max_examples=400, deadline=None)
@given(lat=lats, lon=lons, km=sizes)
def test_a_cell_holds_its_point_and_is_at_least_km_across(lat: float, lon: float,
                                                          km: float) -> None:
    cell = cell_of(lat, lon, km)
    tiny = 1e-9  # a point on a border may fall either side after floating-point rounding
    assert cell.south - tiny <= lat <= cell.north + tiny
    assert cell.west - tiny <= lon <= cell.east + tiny
    assert (cell.north - cell.south) * KM_PER_DEGREE_LAT >= km * (1 - 1e-9) or \
        cell.north == 90 or cell.south == -90
    farthest = max(abs(cell.south), abs(cell.north))
    width = (cell.east - cell.west) * KM_PER_DEGREE_LON * math.cos(math.radians(farthest))
    assert width >= km * (1 - 1e-9) or cell.east - cell.west == 360


@settings(max_examples=400, deadline=None)
@given(lat=lats, lon=lons, km=sizes, u=st.floats(0.01, 0.99), v=st.floats(0.01, 0.99))
def test_every_point_of_a_cell_gives_the_same_output(lat: float, lon: float, km: float,
                                                     u: float, v: float) -> None:
    cell = cell_of(lat, lon, km)
    other_lat = cell.south + u * (cell.north - cell.south)
    other_lon = cell.west + v * (cell.east - cell.west)
    assert coarsen(lat, lon, km) == coarsen(other_lat, other_lon, km)


def test_the_output_is_the_cell_centre_printed_no_finer_than_the_cell() -> None:
    place = coarsen(53.909312, 27.495541, 10)
    cell = cell_of(53.909312, 27.495541, 10)
    assert (place.lat_text(), place.lon_text()) == ("53.86", "27.53")
    assert abs(place.lat - (cell.south + cell.north) / 2) < 0.005
    assert abs(place.lon - (cell.west + cell.east) / 2) < 0.005
    assert coarsen(53.909312, 27.495541, 1).decimals == 3
    assert coarsen(53.909312, 27.495541, 100).decimals == 1


def test_a_coarser_recorded_precision_widens_the_cell() -> None:
    fine = coarsen(53.909312, 27.495541, 10, precision_m=50)
    wide = coarsen(53.909312, 27.495541, 10, precision_m=30_000)
    assert fine.cell_km == 10
    assert wide.cell_km == 60
    assert wide == coarsen(53.909312, 27.495541, 60)


def test_poles_and_the_antimeridian() -> None:
    assert coarsen(90, 180, 10) == coarsen(89.95, -180, 10)  # one cell round the pole
    assert coarsen(0, 180, 10).lon < 180
    assert coarsen(0, -180, 10).lon > -180


@pytest.mark.parametrize(("lat", "lon", "km"), [
    (91, 0, 10), (0, 180.5, 10), (math.nan, 0, 10), (0, math.inf, 10), (0, 0, 0), (0, 0, -1),
])
def test_points_off_the_globe_are_refused(lat: float, lon: float, km: float) -> None:
    with pytest.raises(BadInputError, match="not a") as caught:
        coarsen(lat, lon, km)
    assert caught.value.code == "bad-coordinates"
