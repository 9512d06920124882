"""Members browse the network and stewards reach other communities, in a real Chromium.

Three real nodes on loopback: Riverside (London) learns Hillside (nearby) and
Northside (Manchester) as peers and mirrors their public listings. Map tiles
point at a closed loopback port (see tests.support.processes), so the maps are
checked to draw their markers with no tile at all. Every new page passes axe.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.browser.conftest import (
    DESKTOP,
    MEMBER,
    PASSWORD,
    PHONE,
    STEWARD,
    Node,
    NodeSpec,
    Session,
    eventually,
    fits_phone,
    started_nodes,
    tab,
    unavailable,
)
from tests.support.processes import UNREACHABLE_TILES

try:
    from playwright.sync_api import expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser
PLACES = {
    "riverside": ("Riverside Tool Library", "51.5072,-0.1276"),
    "hillside": ("Hillside Commons", "51.5200,-0.1000"),
    "northside": ("Northside Tools", "53.4808,-2.2426"),
}
TILE_ORIGIN = UNREACHABLE_TILES.split("/tiles/")[0]


@pytest.fixture(scope="module")
def network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    specs = {
        slug: NodeSpec(slug, name, f"{name}: sharing between neighbours.", location=location)
        for slug, (name, location) in PLACES.items()
    }
    with started_nodes(tmp_path_factory.mktemp("network-nodes"), specs) as nodes:
        home, hill, north = nodes["riverside"], nodes["hillside"], nodes["northside"]
        for node, kind, title, category in (
            (hill, "offer", "Hillside cordless drill", "tools"),
            (hill, "need", "Hillside needs a ladder", "tools"),
            (north, "offer", "Northside drill press", "tools"),
            (north, "offer", "Northside sewing lessons", "skills"),
        ):
            body = {"kind": kind, "title": title, "category": category, "visibility": "public"}
            node.api("POST", "/api/v1/listings", node.token(MEMBER), body)
        token = home.token(STEWARD)
        for peer in (hill, north):
            home.api("POST", "/api/v1/discovery/peers", token, {"url": peer.base_url})
        eventually(
            lambda: len(home.mirrored_titles()) == 4, "Riverside mirrors four public listings"
        )
        eventually(
            lambda: len(home.api("GET", "/api/v1/discovery/communities", token)["items"]) == 3,
            "Riverside knows both peers' communities",
        )
        yield nodes


def tiles_only(session: Session) -> list[str]:
    """What the console reported, less the map tiles that must fail (nothing serves them)."""
    return [p for p in session.problems if TILE_ORIGIN not in p]


@pytest.fixture
def member(chromium: Any, network: dict[str, Node]) -> Iterator[Session]:
    with tab(chromium, network["riverside"].base_url, "network", DESKTOP) as session:
        yield session
        session.problems[:] = tiles_only(session)


def result_titles(session: Session) -> list[str]:
    return session.page.locator("#results .listing-card__title").all_inner_texts()


def check(session: Session, label: str) -> None:
    session.shot(label)
    session.check_accessibility(label)


def test_a_member_browses_with_filters_and_shares_the_search(
    chromium: Any, network: dict[str, Node], member: Session
) -> None:
    page = member.page
    member.sign_in(MEMBER)
    page.get_by_role("link", name="Network", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Browse the network")
    expect(page.locator("#results .listing-card")).to_have_count(4)
    expect(page.locator("#results")).to_contain_text(re.compile(r"26[0-9] km away"))
    check(member, "browse")

    page.get_by_label("Search", exact=True).fill("drill")
    page.get_by_label("Kind").select_option("offer")
    page.get_by_label("Within").select_option("25")
    page.get_by_label("Order").select_option("distance")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .listing-card")).to_have_count(1)
    assert result_titles(member) == ["Hillside cordless drill"]
    query = parse_qs(urlsplit(page.url).query)
    assert query["q"] == ["drill"] and query["kind"] == ["offer"] and query["radius_km"] == ["25"]
    check(member, "browse-filtered")

    page.get_by_label("Within").select_option("")
    page.get_by_label("Community", exact=True).select_option(label="Northside Tools")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("#results .listing-card")).to_have_count(1)
    shared = page.url
    assert result_titles(member) == ["Northside drill press"]

    # The URL is the search: someone else opening it sees the same results.
    with tab(chromium, network["riverside"].base_url, "shared", DESKTOP) as other:
        other.page.goto(shared)  # not signed in: the sign-in page returns to the shared URL
        other.page.get_by_label("Username").fill(STEWARD)
        other.page.get_by_label("Password").fill(PASSWORD)
        other.page.get_by_role("button", name="Sign in").click()
        other.page.wait_for_url(shared)
        assert result_titles(other) == ["Northside drill press"]
        expect(other.page.get_by_label("Search", exact=True)).to_have_value("drill")
        expect(other.page.get_by_label("Community", exact=True)).to_have_value(
            network["northside"].handle
        )
        other.problems[:] = tiles_only(other)


def test_the_map_draws_markers_without_any_tiles_and_picks_a_point(
    chromium: Any, network: dict[str, Node], member: Session
) -> None:
    page = member.page
    tile_requests: list[str] = []
    page.on("request", lambda r: tile_requests.append(r.url) if "/tiles/" in r.url else None)
    member.sign_in(MEMBER)
    member.goto("/network/communities")
    expect(page.get_by_role("heading", level=1)).to_have_text("Communities")
    community_map = page.get_by_role("region", name=re.compile("Map of the communities"))
    expect(community_map).to_be_visible()
    expect(community_map.locator(".leaflet-marker-icon")).to_have_count(3)
    expect(community_map.get_by_role("button", name="Northside Tools")).to_be_visible()
    expect(community_map.locator(".leaflet-control-attribution")).to_contain_text(
        "OpenStreetMap contributors"
    )
    assert tile_requests and all(url.startswith(TILE_ORIGIN) for url in tile_requests)
    check(member, "communities")

    community_map.get_by_role("button", name="Northside Tools").click()
    expect(community_map.locator(".leaflet-popup")).to_contain_text("Northside Tools")
    box = community_map.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.8)
    expect(page.get_by_label("From latitude")).not_to_have_value("")
    expect(page.locator("#pick-status")).to_contain_text("Point set to")
    page.get_by_role("button", name="Search").click()
    expect(page.locator(".result-count")).to_contain_text("distances from the chosen point")

    with tab(chromium, network["riverside"].base_url, "phone", PHONE) as phone:
        phone.sign_in(MEMBER)
        phone.goto("/network")
        expect(phone.page.locator("#browse-map .leaflet-marker-icon").first).to_be_attached()
        fits_phone(phone)
        check(phone, "browse")
        phone.goto("/network/communities")
        fits_phone(phone)
        check(phone, "communities")
        phone.problems[:] = tiles_only(phone)


def test_without_javascript_the_pages_still_list_and_filter(
    chromium: Any, network: dict[str, Node]
) -> None:
    context = chromium.new_context(java_script_enabled=False, **DESKTOP)
    try:
        page = context.new_page()
        page.set_default_timeout(10_000)
        session = Session(page, network["riverside"].base_url, "nojs")
        session.sign_in(MEMBER)
        session.goto("/network/communities")
        expect(page.locator("[data-map]")).to_be_hidden()
        names = page.locator(".community-card__name").all_inner_texts()
        assert names == ["Riverside Tool Library", "Hillside Commons", "Northside Tools"]
        page.get_by_label("Within").select_option("25")
        page.get_by_role("button", name="Search").click()
        assert page.locator(".community-card__name").all_inner_texts() == [
            "Riverside Tool Library",
            "Hillside Commons",
        ]
        session.shot("communities")  # axe needs scripts; these pages pass it with them on
        session.goto("/network")
        page.get_by_label("Kind").select_option("need")
        page.get_by_role("button", name="Search").click()
        assert result_titles(session) == ["Hillside needs a ladder"]
        session.shot("browse")
    finally:
        context.close()


def test_a_steward_requests_a_partnership_from_a_community_card(
    network: dict[str, Node], member: Session
) -> None:
    page, north = member.page, network["northside"]
    member.sign_in(STEWARD)
    member.goto("/network/communities")
    card = page.locator(".community-card").filter(has_text=north.name)
    card.get_by_role("link", name=f"Request partnership with {north.name}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Propose a partnership")
    expect(page.get_by_label("Community handle or address")).to_have_value(north.handle)
    page.get_by_role("button", name="Look up community").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Propose a partnership to {north.name}?"
    )
    page.get_by_role("button", name="Send proposal").click()
    expect(page.get_by_role("status")).to_contain_text(f"Proposal sent to {north.name}.")
    member.goto("/network/communities")
    card = page.locator(".community-card").filter(has_text=north.name)
    expect(card.locator(".badge--state-proposed")).to_have_text("Waiting for them")
    expect(card.get_by_role("link", name=re.compile("Request partnership"))).to_have_count(0)
    check(member, "communities-steward")
