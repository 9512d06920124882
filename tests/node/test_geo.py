"""Great-circle distances, checked against published figures."""

from __future__ import annotations

import math

import pytest

from node.domain.geo import EARTH_RADIUS_KM, distance_km
from node.domain.listings import Place

LONDON, PARIS = Place(51.5074, -0.1278), Place(48.8566, 2.3522)


def test_london_to_paris_is_the_published_distance() -> None:
    assert distance_km(LONDON, PARIS) == pytest.approx(343.6, abs=0.5)


def test_distance_is_symmetric_and_zero_at_the_same_place() -> None:
    assert distance_km(PARIS, LONDON) == distance_km(LONDON, PARIS)
    assert distance_km(PARIS, PARIS) == 0


def test_across_the_date_line_takes_the_short_way() -> None:
    assert distance_km(Place(0, 179.5), Place(0, -179.5)) == pytest.approx(111.2, abs=0.1)


def test_antipodes_are_half_way_round() -> None:
    assert distance_km(Place(0, 0), Place(0, 180)) == pytest.approx(math.pi * EARTH_RADIUS_KM)
