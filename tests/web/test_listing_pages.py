"""Posting, browsing and changing listings through the web pages."""

from __future__ import annotations

import re

import pytest
from aiohttp import ClientResponse

from tests.web.conftest import Browser, listings_in_db
from tests.web.test_partnership_pages import add_partnership, add_remote

OFFER = {"kind": "offer", "title": "Cordless drill", "description": "With two batteries."}


async def post_listing(browser: Browser, **fields: str) -> ClientResponse:
    data = {**OFFER, **fields}
    return await browser.submit("/listings/new", data, form_page="/listings/new")


async def posted_id(browser: Browser, **fields: str) -> str:
    response = await post_listing(browser, **fields)
    assert response.status == 303, await response.text()
    match = re.fullmatch(r"/listings/([0-9a-f]{32})", response.headers["Location"])
    assert match
    return match.group(1)


def badges(html: str) -> list[str]:
    """Who can see each listing, as a reader hears it, in page order (never colour alone)."""
    found = re.findall(
        r'class="badge badge--\w+".*?Who can see it: </span>([^<]+)</span>', html, re.S
    )
    return [text.strip() for text in found]


async def test_listings_page_needs_a_signed_in_member(browser: Browser) -> None:
    response = await browser.get("/listings")
    assert response.status == 303
    assert response.headers["Location"] == "/signin?next=%2Flistings"


async def test_offer_form_offers_three_audiences_least_open_first(browser: Browser) -> None:
    await browser.become("max")
    html = await (await browser.get("/listings/new?kind=offer")).text()
    labels = re.findall(
        r'name="visibility" value="(\w+)"[^>]*>\s*<span>.*?<strong>([^<]+)</strong>', html, re.S
    )
    assert labels == [
        ("community", "Only our community"),
        ("partners", "Partner communities"),
        ("public", "Everyone"),
    ]
    # No active partner: "partners" would reach nobody more, so nothing more open is preselected.
    assert '<input type="radio" name="visibility" value="community" checked>' in html
    assert "Post an offer" in html


async def test_need_form_preselects_need(browser: Browser) -> None:
    await browser.become("max")
    html = await (await browser.get("/listings/new?kind=need")).text()
    assert '<input type="radio" name="kind" value="need" checked>' in html
    assert "<h1>Post a need</h1>" in html


async def test_listing_posted_as_it_comes_stays_in_the_community(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    [listing] = await listings_in_db(browser)
    assert (listing.visibility, listing.is_public) == ("community", False)
    html = await (await browser.get(f"/listings/{listing_id}")).text()
    assert "Your offer “Cordless drill” is posted." in html
    assert badges(html) == ["Only our community"]
    assert "Only members of Riverside Tool Library can see this listing." in html


async def test_everyone_makes_a_listing_public(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser, visibility="public")
    [listing] = await listings_in_db(browser)
    assert (listing.visibility, listing.is_public) == ("public", True)
    html = await (await browser.get(f"/listings/{listing_id}")).text()
    assert badges(html) == ["Everyone"]


async def test_partners_choice_without_a_partner_warns_on_the_form_and_after_saving(
    browser: Browser,
) -> None:
    await browser.become("max")
    form = await (await browser.get("/listings/new")).text()
    assert 'value="partners" aria-describedby="no-partner-warning"' in form
    assert "Riverside Tool Library has no active partner community yet" in form
    listing_id = await posted_id(browser, visibility="partners")
    [listing] = await listings_in_db(browser)
    assert (listing.visibility, listing.is_public) == ("partners", False)
    html = await (await browser.get(f"/listings/{listing_id}")).text()
    assert badges(html) == ["Partner communities"]
    assert "for now only members of Riverside Tool Library can see it" in html


async def test_partners_is_preselected_and_named_once_there_is_an_active_partner(
    browser: Browser,
) -> None:
    hillside = await add_remote(browser)
    await add_partnership(browser, hillside, "active")
    await add_partnership(browser, await add_remote(browser, "elsewhere", "Elsewhere"), "proposed")
    await browser.become("max")
    html = await (await browser.get("/listings/new")).text()
    assert '<input type="radio" name="visibility" value="partners" checked>' in html
    assert "Riverside Tool Library and its partner communities: Hillside Commons<" in html
    assert "no-partner-warning" not in html
    listing_id = await posted_id(browser, visibility="partners")
    detail = await (await browser.get(f"/listings/{listing_id}")).text()
    assert "Your offer “Cordless drill” is posted." in detail and "for now only" not in detail


async def test_the_old_share_checkbox_still_means_what_it_said(browser: Browser) -> None:
    await browser.become("max")
    await posted_id(browser, share="yes", audience="partners")
    await posted_id(browser, share="yes")
    await posted_id(browser, audience="partners")
    assert [x.visibility for x in await listings_in_db(browser)] == [
        "partners",
        "public",
        "community",
    ]


async def test_unknown_audience_is_refused(browser: Browser) -> None:
    await browser.become("max")
    response = await post_listing(browser, visibility="everyone-and-their-dog")
    assert response.status == 422
    assert "Choose who can see this listing." in await response.text()
    assert await listings_in_db(browser) == []


async def test_invalid_form_explains_and_keeps_what_was_typed(browser: Browser) -> None:
    await browser.become("max")
    response = await post_listing(
        browser,
        title="   ",
        description="Ladder, 3 m & <sturdy>",
        category="tools",
        place="point",
        latitude="north",
        longitude="-0.12",
        precision="area",
        visibility="public",
    )
    html = await response.text()
    assert response.status == 422
    assert "Please check the fields marked below. Nothing was saved yet." in html
    assert '<p class="field__error" id="title-error">' in html and "Please fill this in." in html
    assert "Give both latitude and longitude as numbers." in html
    assert "Ladder, 3 m &amp; &lt;sturdy&gt;</textarea>" in html
    assert 'value="north"' in html and 'value="tools"' in html
    assert 'name="place" value="point" id="place-point" checked' in html
    assert 'name="precision" value="area" checked' in html
    assert 'name="visibility" value="public" checked' in html
    assert await listings_in_db(browser) == []


async def test_out_of_range_location_is_refused(browser: Browser) -> None:
    await browser.become("max")
    response = await post_listing(browser, latitude="95", longitude="10")
    assert response.status == 422
    assert "Latitude must be between -90 and 90" in await response.text()


async def test_the_place_defaults_to_the_communitys_and_has_no_made_up_values(
    browser: Browser,
) -> None:
    await browser.become("max")
    form = await (await browser.get("/listings/new")).text()
    assert '<input type="radio" name="place" value="community" checked>' in form
    assert "placeholder=" not in form
    assert re.search(
        r'<input id="latitude" name="latitude" type="text" inputmode="decimal" value=""', form
    )
    assert '<label for="latitude">Latitude</label>' in form
    await posted_id(browser, latitude="", longitude="")
    [listing] = await listings_in_db(browser)
    assert (listing.latitude, listing.longitude) == (None, None)


async def test_choosing_a_point_needs_its_coordinates(browser: Browser) -> None:
    await browser.become("max")
    response = await post_listing(browser, place="point", latitude="", longitude="")
    assert response.status == 422
    assert "Pick a point on the map, or type its latitude and longitude below." in (
        await response.text()
    )
    assert await listings_in_db(browser) == []


@pytest.mark.parametrize(
    ("precision", "kept", "note"),
    [
        ("exact", (51.507215, -0.127586), "exact; about 1 km for other communities"),
        ("neighbourhood", (51.51, -0.13), "within about 1 km"),
        ("area", (51.5, -0.1), "within about 10 km"),
    ],
)
async def test_a_point_is_kept_only_as_precisely_as_chosen(
    browser: Browser, precision: str, kept: tuple[float, float], note: str
) -> None:
    await browser.become("max")
    listing_id = await posted_id(
        browser, place="point", latitude="51.507215", longitude="-0.127586", precision=precision
    )
    [listing] = await listings_in_db(browser)
    assert (listing.latitude, listing.longitude, listing.location_precision) == (*kept, precision)
    html = await (await browser.get(f"/listings/{listing_id}")).text()
    assert f"({note})" in html
    edit = await (await browser.get(f"/listings/{listing_id}/edit")).text()
    assert f'name="latitude" type="text" inputmode="decimal" value="{kept[0]}"' in edit
    assert f'name="precision" value="{precision}" checked' in edit


async def test_choosing_the_communitys_place_again_clears_the_point(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser, place="point", latitude="51.5", longitude="-0.1")
    await browser.submit(
        f"/listings/{listing_id}/edit",
        {**OFFER, "place": "community", "latitude": "51.5", "longitude": "-0.1"},
    )
    [listing] = await listings_in_db(browser)
    assert (listing.latitude, listing.longitude) == (None, None)


async def test_titles_are_escaped(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser, title="<script>alert(1)</script>")
    for path in ("/listings", f"/listings/{listing_id}", f"/listings/{listing_id}/edit"):
        html = await (await browser.get(path)).text()
        assert "<script>" not in html, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, path


@pytest.mark.parametrize("token", [None, "", "forged-token"])
async def test_post_without_the_right_csrf_token_changes_nothing(
    browser: Browser, token: str | None
) -> None:
    await browser.become("max")
    data = {**OFFER, "visibility": "public"}
    if token is not None:
        data["csrf_token"] = token
    response = await browser.post("/listings/new", data)
    assert response.status == 403
    assert "That form could not be accepted" in await response.text()
    assert await listings_in_db(browser) == []


async def test_csrf_token_of_another_session_is_refused(browser: Browser) -> None:
    await browser.become("olga")
    olgas_token = await browser.csrf()
    await browser.become("max")
    response = await browser.post("/listings/new", {**OFFER, "csrf_token": olgas_token})
    assert response.status == 403
    assert await listings_in_db(browser) == []


async def test_listings_are_newest_first_with_filters_and_closed_ones_hidden(
    browser: Browser,
) -> None:
    await browser.become("max")
    await posted_id(browser, title="Bread maker", category="Food")
    await posted_id(browser, kind="need", title="Lift to the station", category="transport")
    closed = await posted_id(browser, title="Old ladder", category="tools")
    await browser.submit(f"/listings/{closed}/close", {})

    def titles(html: str) -> list[str]:
        return re.findall(r'<h2 class="listing-card__title"><a href="[^"]+">([^<]+)</a>', html)

    open_ones = await (await browser.get("/listings")).text()
    assert titles(open_ones) == ["Lift to the station", "Bread maker"]
    assert "closed ones are hidden" in open_ones
    everything = await (await browser.get("/listings?closed=yes")).text()
    assert titles(everything) == ["Old ladder", "Lift to the station", "Bread maker"]
    assert 'name="closed" type="checkbox" value="yes" checked' in everything
    needs = await (await browser.get("/listings?kind=need&category=&q=")).text()
    assert titles(needs) == ["Lift to the station"]
    assert "1 listing matches" in needs
    food = await (await browser.get("/listings?category=FOOD")).text()
    assert titles(food) == ["Bread maker"]
    closed_only = await (await browser.get("/listings?status=closed")).text()
    assert titles(closed_only) == ["Old ladder"]
    assert "Closed</span>" in closed_only


async def test_nonsense_filter_is_a_bad_request(browser: Browser) -> None:
    await browser.become("max")
    response = await browser.get("/listings?kind=gift")
    assert response.status == 400
    assert "That filter is not valid" in await response.text()


async def test_empty_community_invites_a_first_listing(browser: Browser) -> None:
    await browser.become("max")
    html = await (await browser.get("/listings")).text()
    assert "No open listings yet" in html


async def test_another_member_may_look_but_not_change(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    await browser.become("olga")
    detail = await (await browser.get(f"/listings/{listing_id}")).text()
    assert "Cordless drill" in detail and f"/listings/{listing_id}/edit" not in detail

    edit_form = await browser.get(f"/listings/{listing_id}/edit")
    assert edit_form.status == 403
    assert "Only the member who posted this listing, or a steward" in await edit_form.text()
    for action, data in (("edit", {**OFFER, "title": "Mine now"}), ("close", {}), ("delete", {})):
        response = await browser.submit(f"/listings/{listing_id}/{action}", data)
        assert response.status == 403, action
    assert (await browser.get(f"/listings/{listing_id}/delete")).status == 403
    [listing] = await listings_in_db(browser)
    assert (listing.title, listing.status) == ("Cordless drill", "active")


async def test_author_edits_a_listing_and_its_visibility(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser, visibility="public")
    form = await (await browser.get(f"/listings/{listing_id}/edit")).text()
    assert 'value="Cordless drill"' in form
    assert 'name="visibility" value="public" checked' in form
    assert "Save changes" in form

    response = await browser.submit(
        f"/listings/{listing_id}/edit",
        {**OFFER, "title": "Cordless drill and bits", "visibility": "partners"},
    )
    assert response.headers["Location"] == f"/listings/{listing_id}"
    [listing] = await listings_in_db(browser)
    assert (listing.title, listing.visibility, listing.is_public) == (
        "Cordless drill and bits",
        "partners",
        False,
    )
    html = await (await browser.get(f"/listings/{listing_id}")).text()
    assert "Your changes are saved." in html and badges(html) == ["Partner communities"]


async def test_only_our_community_brings_a_listing_home(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser, visibility="public")
    await browser.submit(f"/listings/{listing_id}/edit", {**OFFER, "visibility": "community"})
    [listing] = await listings_in_db(browser)
    assert (listing.visibility, listing.is_public) == ("community", False)


async def test_invalid_edit_changes_nothing(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    response = await browser.submit(
        f"/listings/{listing_id}/edit",
        {**OFFER, "title": "", "description": "Typed, then refused", "visibility": "public"},
    )
    assert response.status == 422
    html = await response.text()
    assert "Typed, then refused</textarea>" in html
    assert 'name="visibility" value="public" checked' in html
    [listing] = await listings_in_db(browser)
    assert listing.title == "Cordless drill"


async def test_steward_may_edit_a_members_listing(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    await browser.become("stella")
    assert (
        f"/listings/{listing_id}/edit"
        in await (await browser.get(f"/listings/{listing_id}")).text()
    )
    response = await browser.submit(f"/listings/{listing_id}/edit", {**OFFER, "title": "Drill"})
    assert response.status == 303
    [listing] = await listings_in_db(browser)
    assert listing.title == "Drill"


async def test_close_and_reopen(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    closed = await browser.submit(f"/listings/{listing_id}/close", {})
    assert closed.headers["Location"] == f"/listings/{listing_id}"
    html = await (await browser.get(f"/listings/{listing_id}")).text()
    assert "This offer is closed." in html and "Reopen listing" in html
    assert (await listings_in_db(browser))[0].status == "closed"

    await browser.submit(f"/listings/{listing_id}/reopen", {})
    html = await (await browser.get(f"/listings/{listing_id}")).text()
    assert "Listing reopened." in html and "Close listing" in html
    assert (await listings_in_db(browser))[0].status == "active"


async def test_delete_asks_first_then_removes(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    confirm = await (await browser.get(f"/listings/{listing_id}/delete")).text()
    assert "Delete “Cordless drill”?" in confirm and "cannot be undone" in confirm
    assert len(await listings_in_db(browser)) == 1

    response = await browser.submit(f"/listings/{listing_id}/delete", {})
    assert response.headers["Location"] == "/listings"
    assert await listings_in_db(browser) == []
    assert "“Cordless drill” is deleted." in await (await browser.get("/listings")).text()
    missing = await browser.get(f"/listings/{listing_id}")
    assert missing.status == 404
    assert "Not found" in await missing.text()


async def test_pages_follow_the_content_security_policy(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser, description="Line one\nLine two")
    paths = ["/listings", "/listings/new?kind=need", f"/listings/{listing_id}",
             f"/listings/{listing_id}/edit", f"/listings/{listing_id}/delete"]  # fmt: skip
    for path in paths:
        response = await browser.get(path)
        html = await response.text()
        assert "style-src 'self'" in response.headers["Content-Security-Policy"], path
        assert response.headers["Cache-Control"] == "no-store", path
        assert not re.search(r"\sstyle=|<style", html), path
        scripts = re.findall(r"<script[^>]*>", html)
        assert all(re.fullmatch(r'<script src="/static/[^"]+" defer>', x) for x in scripts), path
        assert '<meta name="viewport"' in html, path
        assert '<a href="/api/docs">API documentation</a>' in html, path


async def test_stylesheet_is_served(browser: Browser) -> None:
    response = await browser.get("/static/style.css")
    assert response.status == 200
    assert response.content_type == "text/css"
    assert "--c-primary" in await response.text()
