"""How precisely a listing's place is kept, and how coarsely it is shown to others.

A member picks a point and a precision. `exact` keeps the point as given, for
their own community; `neighbourhood` and `area` snap it to a grid of about
1 km or 10 km before it is stored, so the node never holds more than the
member chose to give. Whatever the choice, another community (and a member of
another community hosted on this node) sees at most the ~1 km grid: exact
points never leave their community.

Rounding to decimal degrees is the grid: two decimals is ~1.1 km of latitude
(less of longitude away from the equator), one decimal ~11 km.
"""

from __future__ import annotations

from dataclasses import dataclass

from storage.states import LocationPrecision


@dataclass(frozen=True)
class Place:
    lat: float
    lon: float


KEPT_DECIMALS: dict[LocationPrecision, int | None] = {
    LocationPrecision.EXACT: None,
    LocationPrecision.NEIGHBOURHOOD: 2,
    LocationPrecision.AREA: 1,
}
SHARED_DECIMALS: dict[LocationPrecision, int] = {
    LocationPrecision.EXACT: 2,
    LocationPrecision.NEIGHBOURHOOD: 2,
    LocationPrecision.AREA: 1,
}
SHARED_RADIUS_M: dict[LocationPrecision, int] = {
    LocationPrecision.EXACT: 1000,
    LocationPrecision.NEIGHBOURHOOD: 1000,
    LocationPrecision.AREA: 10000,
}
"""About how far from the shared point the place may be, in metres (AS2 `radius`)."""


def _rounded(place: Place, decimals: int) -> Place:
    # Adding 0.0 turns a rounded -0.0 into 0.0, which reads better on a page.
    return Place(round(place.lat, decimals) + 0.0, round(place.lon, decimals) + 0.0)


def kept_place(place: Place, precision: LocationPrecision) -> Place:
    """The point as stored: as given for `exact`, snapped to the grid otherwise."""
    decimals = KEPT_DECIMALS[precision]
    return place if decimals is None else _rounded(place, decimals)


def shared_place(place: Place, precision: LocationPrecision) -> Place:
    """The point anyone outside the listing's community may see."""
    return _rounded(place, SHARED_DECIMALS[precision])


def precision_of(value: str | None) -> LocationPrecision:
    """A stored precision; anything unknown is treated as the coarsest."""
    try:
        return LocationPrecision(value or LocationPrecision.EXACT)
    except ValueError:
        return LocationPrecision.AREA
