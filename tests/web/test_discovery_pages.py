"""The network pages: browsing listings across the network, and the communities this node
knows, with every filter in the URL.

Other communities are cached rows inserted directly, the way the mirror stores
what partners and the public network send; the pages only ever read that cache.
"""

from __future__ import annotations

import html
import re
import uuid
from datetime import timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import update

from node.appkeys import SESSIONS
from storage.models import Community, CommunityPartnership, RemoteListing, utcnow
from storage.repositories import CommunityRepository
from tests.support.processes import free_port
from tests.web.conftest import SLUG, Browser

HOME = (51.5072, -0.1276)  # our community: London
NEAR = (51.5200, -0.1000)  # about 2.5 km away
FAR = (53.4808, -2.2426)  # Manchester, about 260 km away
NEXT_LINK = re.compile(r'<a class="button" href="([^"]+)" rel="next">More results</a>')


async def place_home(browser: Browser) -> None:
    async with browser.client.app[SESSIONS]() as db:
        await db.execute(
            update(Community)
            .where(Community.is_local.is_(True))
            .values(latitude=HOME[0], longitude=HOME[1])
        )
        await db.commit()


async def add_remote(
    browser: Browser, slug: str, name: str, where: tuple[float, float] | None
) -> Community:
    base = f"http://127.0.0.1:{free_port()}"
    async with browser.client.app[SESSIONS]() as db:
        community = Community(
            ap_id=f"{base}/c/{slug}",
            is_local=False,
            slug=slug,
            host=base.removeprefix("http://"),
            name=name,
            description=f"{name}: tools and skills shared by neighbours.",
            base_url=base,
            inbox_url=f"{base}/c/{slug}/inbox",
            latitude=where[0] if where else None,
            longitude=where[1] if where else None,
            public_offer_count=4,
            public_need_count=2,
            fetched_at=utcnow(),
        )
        db.add(community)
        await db.commit()
        return community


async def add_listing(
    browser: Browser,
    origin: Community,
    title: str,
    audience: str = "public",
    kind: str = "offer",
    age: timedelta = timedelta(0),
) -> None:
    async with browser.client.app[SESSIONS]() as db:
        db.add(
            RemoteListing(
                ap_id=f"{origin.ap_id}/listings/{uuid.uuid4().hex}",
                origin_community_id=origin.id,
                audience=audience,
                kind=kind,
                title=title,
                description="Mirrored from elsewhere.",
                category="tools",
                published_at=utcnow() - age,
            )
        )
        await db.commit()


async def partner_with(browser: Browser, remote: Community, state: str = "active") -> None:
    async with browser.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug(SLUG)
        assert local is not None
        db.add(
            CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=remote.id,
                state=state,
                initiated_by="us",
                follow_activity_id=f"{remote.ap_id}/activities/{uuid.uuid4().hex}",
                message="",
            )
        )
        await db.commit()


async def page_text(browser: Browser, path: str, status: int = 200) -> str:
    response = await browser.get(path)
    body = await response.text()
    assert response.status == status, body[:2000]
    return html.unescape(body)


def titles(body: str) -> list[str]:
    return re.findall(r'<h2 class="listing-card__title">(?:<a [^>]*>)?([^<]+)', body)


async def test_browse_mixes_our_partners_and_the_public_network_with_origin_and_distance(
    browser: Browser,
) -> None:
    await place_home(browser)
    await browser.become("max")
    await browser.submit("/listings/new", {"kind": "offer", "title": "Our own ladder"})
    near = await add_remote(browser, "hillside", "Hillside Commons", NEAR)
    far = await add_remote(browser, "northside", "Northside Tools", FAR)
    stranger = await add_remote(browser, "elsewhere", "Elsewhere", FAR)
    await partner_with(browser, near)
    await add_listing(browser, near, "Hillside partners-only canoe", audience="partners")
    await add_listing(browser, far, "Northside public apple press")
    await add_listing(browser, stranger, "Elsewhere partners-only secret", audience="partners")

    body = await page_text(browser, "/network")
    assert set(titles(body)) == {
        "Our own ladder",
        "Hillside partners-only canoe",
        "Northside public apple press",
    }
    assert "Our community" in body and "Partner" in body and "Public network" in body
    assert "2.4 km away" in body  # Hillside, from our community
    assert "262 km away" in body
    assert "distances from Riverside Tool Library" in body


async def test_every_filter_is_in_the_url_and_narrows_the_results(browser: Browser) -> None:
    await place_home(browser)
    await browser.become("max")
    near = await add_remote(browser, "hillside", "Hillside Commons", NEAR)
    far = await add_remote(browser, "northside", "Northside Tools", FAR)
    await add_listing(browser, near, "Hillside cordless drill")
    await add_listing(browser, near, "Hillside needs a drill bit", kind="need")
    await add_listing(browser, far, "Northside drill press")
    await add_listing(browser, far, "Northside sewing machine")

    assert set(titles(await page_text(browser, "/network?q=drill&kind=offer"))) == {
        "Hillside cordless drill",
        "Northside drill press",
    }
    nearby = await page_text(browser, "/network?q=drill&radius_km=25")
    assert set(titles(nearby)) == {"Hillside cordless drill", "Hillside needs a drill bit"}
    handle = far.handle
    only_far = await page_text(browser, f"/network?community={handle}&sort=distance")
    assert set(titles(only_far)) == {"Northside drill press", "Northside sewing machine"}
    assert f'<option value="{handle}" selected>Northside Tools</option>' in only_far
    # A point picked on the map (or typed) replaces our community as the centre.
    around_far = await page_text(browser, f"/network?lat={FAR[0]}&lon={FAR[1]}&radius_km=10")
    assert set(titles(around_far)) == {"Northside drill press", "Northside sewing machine"}
    assert "distances from the chosen point" in around_far


async def test_more_results_keeps_the_filters_and_walks_every_listing_once(
    browser: Browser,
) -> None:
    await browser.become("max")
    remote = await add_remote(browser, "hillside", "Hillside Commons", NEAR)
    for number in range(35):
        await add_listing(
            browser, remote, f"Hillside tool {number:02}", age=timedelta(minutes=number)
        )
    await add_listing(browser, remote, "Hillside needs a tool", kind="need")

    first = await page_text(browser, "/network?kind=offer&q=tool")
    link = NEXT_LINK.search(first)
    assert link is not None
    next_path = link.group(1)
    assert "kind=offer" in next_path and "q=tool" in next_path and "cursor=" in next_path
    second = await page_text(browser, next_path)
    assert NEXT_LINK.search(second) is None
    seen = titles(first) + titles(second)
    assert sorted(seen) == [f"Hillside tool {n:02}" for n in range(35)]
    assert seen[0] == "Hillside tool 00"  # newest first


async def test_a_bad_filter_is_a_400_that_says_which_and_searches_nothing(
    browser: Browser,
) -> None:
    await browser.become("max")
    remote = await add_remote(browser, "hillside", "Hillside Commons", NEAR)
    await add_listing(browser, remote, "Hillside cordless drill")
    body = await page_text(browser, "/network?lat=north&lon=3&q=drill", status=400)
    assert "Latitude must be a number from -90 to 90." in body
    assert 'value="drill"' in body and titles(body) == []
    half = await page_text(browser, "/network?lat=51.5", status=400)
    assert "Give both latitude and longitude, or neither." in half
    await page_text(browser, "/network?radius_km=-4", status=400)
    await page_text(browser, "/network?kind=gift", status=400)
    await page_text(browser, "/network?cursor=not-a-cursor", status=400)
    await page_text(browser, "/network/communities?lon=500", status=400)


async def test_communities_show_place_counts_and_partnership(browser: Browser) -> None:
    await place_home(browser)
    await browser.become("max")
    near = await add_remote(browser, "hillside", "Hillside Commons", NEAR)
    far = await add_remote(browser, "northside", "Northside Tools", FAR)
    await partner_with(browser, near)

    body = await page_text(browser, "/network/communities")
    names = re.findall(r'class="community-card__name"[^>]*>([^<]+)', body)
    assert names == ["Riverside Tool Library", "Hillside Commons", "Northside Tools"]  # nearest
    assert near.handle in body and far.handle in body
    assert "Partners" in body  # the active partnership
    assert f'data-lat="{FAR[0]}" data-lon="{FAR[1]}" data-name="Northside Tools"' in body
    assert "262 km away" in body
    assert "Request partnership" not in body  # members cannot propose
    nearby = await page_text(browser, "/network/communities?radius_km=25")
    assert "Hillside Commons" in nearby and "Northside Tools" not in nearby


async def test_a_steward_requests_a_partnership_from_a_community_card(browser: Browser) -> None:
    await browser.become("stella")
    near = await add_remote(browser, "hillside", "Hillside Commons", NEAR)
    far = await add_remote(browser, "northside", "Northside Tools", FAR)
    await partner_with(browser, near)
    body = await page_text(browser, "/network/communities")
    links = re.findall(r'href="(/steward/partnerships/new\?target=[^"]+)"', body)
    assert links == [f"/steward/partnerships/new?target={quote(far.handle)}"]
    form = await page_text(browser, links[0])
    assert f'name="target" type="text" value="{far.handle}"' in form


@pytest.mark.parametrize("path", ["/network", "/network/communities"])
async def test_network_pages_load_only_their_own_scripts(browser: Browser, path: str) -> None:
    await browser.become("max")
    response = await browser.get(path)
    body = await response.text()
    assert response.status == 200
    assert not re.search(r"\sstyle=|<style|<script>|<script [^>]*>[^<]", body)
    scripts = re.findall(r'<script src="([^"]+)"', body)
    assert [s.split("?")[0] for s in scripts] == [
        "/static/vendor/leaflet/leaflet.js",
        "/static/map.js",
    ]
    assert 'data-tile-url="https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in body
    assert "OpenStreetMap contributors" in body
    assert 'aria-current="page"' in body


async def test_the_listing_form_offers_the_community_categories_and_takes_others(
    browser: Browser,
) -> None:
    await browser.become("max")
    form = await page_text(browser, "/listings/new?kind=offer")
    assert '<option value="skills">Skills and time</option>' in form
    response = await browser.submit(
        "/listings/new", {"kind": "offer", "title": "Loom", "category": "Weaving"}
    )
    assert response.status == 303
    listing = await page_text(browser, response.headers["Location"])
    assert "weaving" in listing
