"""How precisely a listing's place is kept, and what another community is shown."""

from __future__ import annotations

import pytest

from node.domain.listings import view_of_listing
from node.domain.places import Place, kept_place, shared_place
from storage.models import Community, Listing, utcnow
from storage.states import LocationPrecision

POINT = Place(51.507215, -0.127586)


@pytest.mark.parametrize(
    ("precision", "kept", "shared"),
    [
        (LocationPrecision.EXACT, POINT, Place(51.51, -0.13)),
        (LocationPrecision.NEIGHBOURHOOD, Place(51.51, -0.13), Place(51.51, -0.13)),
        (LocationPrecision.AREA, Place(51.5, -0.1), Place(51.5, -0.1)),
    ],
)
def test_a_point_is_kept_as_chosen_and_shared_no_finer_than_a_kilometre(
    precision: LocationPrecision, kept: Place, shared: Place
) -> None:
    assert kept_place(POINT, precision) == kept
    assert shared_place(kept_place(POINT, precision), precision) == shared


def test_rounding_never_shows_a_negative_zero() -> None:
    assert shared_place(Place(-0.001, -0.004), LocationPrecision.AREA) == Place(0.0, 0.0)
    assert str(shared_place(Place(-0.001, -0.004), LocationPrecision.AREA).lat) == "0.0"


def _listing(precision: LocationPrecision) -> Listing:
    community = Community(id=1, ap_id="http://n.test/c/a", slug="a", host="n.test", name="A")
    now = utcnow()
    return Listing(
        id="0" * 32,
        ap_id="http://n.test/c/a/listings/1",
        community_id=1,
        community=community,
        author=None,
        kind="offer",
        title="Canoe",
        description="",
        category="",
        status="active",
        visibility="public",
        latitude=POINT.lat,
        longitude=POINT.lon,
        location_precision=precision,
        created_at=now,
        updated_at=now,
    )


def test_another_community_on_the_same_node_sees_only_the_coarse_point() -> None:
    listing = _listing(LocationPrecision.EXACT)
    own = view_of_listing(listing, viewer_community_id=1)
    assert (own.location, own.location_precision) == (POINT, LocationPrecision.EXACT)
    other = view_of_listing(listing, viewer_community_id=2)
    assert other.location == Place(51.51, -0.13)
    assert other.location_precision == LocationPrecision.NEIGHBOURHOOD
