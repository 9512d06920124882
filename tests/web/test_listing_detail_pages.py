"""Every listing a member can see has its own page, mirrored ones included.

Remote communities and their listings are rows, as the mirror would hold them;
what the page may show is decided by the same rule as the lists.
"""

from __future__ import annotations

import re

from node.appkeys import SESSIONS
from storage.models import BlockedDomain, Community, CommunityPartnership, RemoteListing
from storage.repositories import CommunityRepository
from tests.web.conftest import SLUG, Browser
from tests.web.test_listing_pages import posted_id
from tests.web.test_partnership_pages import (
    add_partnership,
    add_remote,
    add_remote_listing,
    html_of,
)

LONDON, PARIS = (51.5074, -0.1278), (48.8566, 2.3522)


def fact(html: str, name: str) -> str:
    """The text of one fact (`<dt>name</dt><dd>…</dd>`), tags stripped, spaces collapsed."""
    match = re.search(rf"<dt>{name}</dt><dd[^>]*>(.*?)</dd>", html, re.S)
    assert match, f"no fact {name!r}"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


def sharing(html: str) -> str:
    """The detail page's sharing line as read aloud: who can see it, then where it is from."""
    match = re.search(r'<div class="badges">(.*?)</div>', html, re.S)
    assert match, "no badges"
    return " ".join(re.sub(r"<[^>]+>", " ", match.group(1)).split())


async def place_community(
    browser: Browser, community: Community | None, at: tuple[float, float]
) -> None:
    async with browser.client.app[SESSIONS]() as db:
        row = (
            await CommunityRepository(db).get_local_by_slug(SLUG)
            if community is None
            else await db.get(Community, community.id)
        )
        assert row is not None
        row.latitude, row.longitude = at
        await db.commit()


async def test_a_public_listing_of_another_community_has_a_page(browser: Browser) -> None:
    stranger = await add_remote(browser, "faraway", "Faraway Guild")
    listing_id = await add_remote_listing(browser, stranger, "Their public piano", "public")
    await browser.become("max")

    html = await html_of(browser, f"/listings/{listing_id}")

    assert "<h1>Their public piano</h1>" in html
    assert "Mirrored from elsewhere." in html
    assert fact(html, "Category") == "tools"
    assert fact(html, "Community") == f"Faraway Guild {stranger.handle}"
    assert sharing(html) == "Offer Who can see it: Everyone From the public network"
    assert fact(html, "Posted by") == "a member of Faraway Guild"
    assert "A public listing of Faraway Guild, another community on the network." in html
    assert "/edit" not in html and "Close listing" not in html


async def test_a_partner_listing_has_a_page_only_while_the_partnership_is_active(
    browser: Browser,
) -> None:
    partner = await add_remote(browser)
    partnership = await add_partnership(browser, partner, "active")
    listing_id = await add_remote_listing(browser, partner, "Their cargo bike", "partners")
    await browser.become("max")

    html = await html_of(browser, f"/listings/{listing_id}")
    assert sharing(html).endswith("Who can see it: Partner communities From a partner")
    assert "Hillside Commons shares this listing with its partner communities" in html

    async with browser.client.app[SESSIONS]() as db:
        row = await db.get(CommunityPartnership, partnership)
        assert row is not None
        row.state = "dissolved"
        await db.commit()
    assert "Their cargo bike" not in await html_of(browser, f"/listings/{listing_id}", 404)


async def test_a_partner_listing_is_not_shown_without_a_partnership(browser: Browser) -> None:
    other = await add_remote(browser)
    await add_partnership(browser, other, "pending")
    listing_id = await add_remote_listing(browser, other, "Their cargo bike", "partners")
    await browser.become("max")
    assert "Their cargo bike" not in await html_of(browser, f"/listings/{listing_id}", 404)


async def test_listings_from_a_blocked_host_have_no_page(browser: Browser) -> None:
    stranger = await add_remote(browser, "faraway", "Faraway Guild")
    listing_id = await add_remote_listing(browser, stranger, "Their public piano", "public")
    async with browser.client.app[SESSIONS]() as db:
        db.add(BlockedDomain(domain=stranger.host))
        await db.commit()
    await browser.become("max")
    assert "Their public piano" not in await html_of(browser, f"/listings/{listing_id}", 404)


async def test_a_tombstoned_listing_has_no_page(browser: Browser) -> None:
    stranger = await add_remote(browser, "faraway", "Faraway Guild")
    listing_id = await add_remote_listing(browser, stranger, "Their public piano", "public")
    async with browser.client.app[SESSIONS]() as db:
        row = await db.get(RemoteListing, listing_id)
        assert row is not None
        row.is_tombstoned = True
        await db.commit()
    await browser.become("max")
    await html_of(browser, f"/listings/{listing_id}", 404)


async def test_the_page_says_how_far_away_the_listing_is(browser: Browser) -> None:
    stranger = await add_remote(browser, "paris", "Paris Outils")
    listing_id = await add_remote_listing(browser, stranger, "Their public piano", "public")
    await browser.become("max")
    html = await html_of(browser, f"/listings/{listing_id}")
    assert "<dt>Location</dt>" not in html and "<dt>Distance</dt>" not in html

    await place_community(browser, None, LONDON)
    await place_community(browser, stranger, PARIS)
    html = await html_of(browser, f"/listings/{listing_id}")
    assert fact(html, "Location") == "48.8566, 2.3522 (where Paris Outils is)"
    assert fact(html, "Distance") == "344 km from Riverside Tool Library"


async def test_our_own_listing_shows_its_poster_and_its_own_place(browser: Browser) -> None:
    await place_community(browser, None, LONDON)
    await browser.become("max")
    listing_id = await posted_id(
        browser, place="point", latitude="51.5200", longitude="-0.1000", precision="exact"
    )
    html = await html_of(browser, f"/listings/{listing_id}")
    assert fact(html, "Posted by") == "max"
    assert fact(html, "Community") == "Riverside Tool Library"
    assert sharing(html) == "Offer Who can see it: Only our community From our community"
    assert fact(html, "Location") == "51.5200, -0.1000 (exact; about 1 km for other communities)"
    assert fact(html, "Distance") == "2.4 km from Riverside Tool Library"


async def test_an_unknown_listing_is_not_found(browser: Browser) -> None:
    await browser.become("olga")
    await html_of(browser, "/listings/" + "0" * 32, 404)
