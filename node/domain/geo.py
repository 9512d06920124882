"""Distances on the Earth's surface, for "how far is this from us" on listing pages.

Coordinates here are coarse (communities round theirs to about a kilometre), so
a spherical Earth is as exact as the inputs: the haversine formula is accurate
to well under a percent at every distance a member would travel.
"""

from __future__ import annotations

from math import asin, cos, radians, sin, sqrt

from node.domain.listings import Place

EARTH_RADIUS_KM = 6371.0088  # the mean radius (IUGG)


def distance_km(a: Place, b: Place) -> float:
    """Great-circle distance between two places, in kilometres."""
    lat1, lat2 = radians(a.lat), radians(b.lat)
    dlat, dlon = lat2 - lat1, radians(b.lon - a.lon)
    h = sin(dlat / 2) ** 2 + cos(lat1) * cos(lat2) * sin(dlon / 2) ** 2
    return 2 * EARTH_RADIUS_KM * asin(min(1.0, sqrt(h)))
