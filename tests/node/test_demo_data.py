"""The demo's sample data: the same every time, and varied enough to show every feature."""

from __future__ import annotations

import struct
import zlib
from collections import Counter

from node.demo_data.photos import HEIGHT, WIDTH, draw_photo
from node.demo_data.plan import COMMUNITIES, build_plan
from node.domain.categories import DEFAULT_CATEGORIES
from node.domain.geo import distance_km
from node.domain.listings import Place

LOGINS = {c.slug: (f"steward_{c.slug}", f"member_{c.slug}") for c in COMMUNITIES}
PARTNERS = {frozenset(("riverside", "hillside"))}


def test_the_plan_is_the_same_every_time() -> None:
    assert build_plan(COMMUNITIES, PARTNERS, LOGINS) == build_plan(COMMUNITIES, PARTNERS, LOGINS)


def test_the_full_plan_has_dozens_of_members_and_hundreds_of_listings() -> None:
    plan = build_plan(COMMUNITIES, PARTNERS, LOGINS)
    assert all(len(people) >= 20 for people in plan.people.values())
    assert len(plan.listings) >= 250
    assert {x.visibility for x in plan.listings} == {"community", "partners", "public"}
    assert {x.kind for x in plan.listings} == {"offer", "need"}
    known = {c.slug for c in DEFAULT_CATEGORIES}
    assert {x.category for x in plan.listings} <= known
    assert len({x.category for x in plan.listings}) >= 12
    for slug in LOGINS:  # no community lists the same thing twice
        titles = Counter(x.title for x in plan.listings if x.community == slug)
        assert titles.most_common(1)[0][1] == 1


def test_places_spread_around_each_community_and_one_is_far_away() -> None:
    plan = build_plan(COMMUNITIES, PARTNERS, LOGINS)
    centres = {c.slug: c.center for c in COMMUNITIES}
    for listing in plan.listings:
        if listing.place is not None:
            centre = centres[listing.community]
            assert distance_km(Place(*centre), Place(*listing.place)) <= 4
    far = next(c for c in COMMUNITIES if c.far)
    assert all(
        distance_km(Place(*far.center), Place(*c.center)) > 400 for c in COMMUNITIES if not c.far
    )


def test_exchanges_cross_communities_over_months_and_some_await_an_answer() -> None:
    plan = build_plan(COMMUNITIES, PARTNERS, LOGINS)
    owner = {x.key: x.community for x in plan.listings}
    crossing = [e for e in plan.exchanges if owner[e.listing] != e.requester_community]
    assert len(crossing) >= 30
    assert max(e.days_ago for e in plan.exchanges) > 90
    assert {e.status for e in plan.exchanges} == {
        "completed", "declined", "cancelled", "accepted", "requested",
    }  # fmt: skip
    member_waits = [e for e in plan.exchanges if e.requester.startswith("member_")]
    assert any(e.status == "requested" for e in member_waits)


def test_a_smaller_scale_keeps_every_kind_of_thing() -> None:
    plan = build_plan(COMMUNITIES, PARTNERS, LOGINS, scale=0.25)
    assert len(plan.listings) < 100
    assert {x.visibility for x in plan.listings} == {"community", "partners", "public"}


def test_a_generated_photo_is_a_png_of_the_stated_size_the_same_each_time() -> None:
    photo = draw_photo("garden", "riverside-3")
    assert photo.startswith(b"\x89PNG\r\n\x1a\n")
    width, height = struct.unpack(">II", photo[16:24])
    assert (width, height) == (WIDTH, HEIGHT)
    idat = photo.index(b"IDAT")
    length = struct.unpack(">I", photo[idat - 4 : idat])[0]
    assert len(zlib.decompress(photo[idat + 4 : idat + 4 + length])) == HEIGHT * (1 + WIDTH * 3)
    assert draw_photo("garden", "riverside-3") == photo
    assert draw_photo("tools", "riverside-3") != photo
