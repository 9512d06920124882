"""A steward and a member use the listing pages in a real Chromium."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.browser.conftest import (
    COMMUNITY_NAME,
    MEMBER,
    PHONE,
    STEWARD,
    RunningNode,
    Session,
    fits_phone,
    tab,
    unavailable,
)

try:
    from playwright.sync_api import Locator, expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser
AUDIENCE = {
    "community": "Only our community",
    "partners": "Partner communities",
    "public": "Everyone",
}


def audience(session: Session, visibility: str) -> Locator:
    """The "who can see it" choice on the form, by the words the badge also uses."""
    name = re.compile("^" + AUDIENCE[visibility])
    radio: Locator = session.page.get_by_role("radio", name=name)
    return radio


def unique(title: str) -> str:
    """Tests share one node; a suffix keeps each test's listings apart."""
    return f"{title} {uuid.uuid4().hex[:4]}"


def card(session: Session, title: str) -> Locator:
    cards: Locator = session.page.locator("article.listing-card")
    return cards.filter(has_text=title)


def badge(session: Session, title: str, visibility: str) -> Locator:
    """Who can see it, on a listing's card: icon plus text, e.g. "Everyone"."""
    return card(session, title).locator(f".badge--{visibility}")


def post_listing(session: Session, kind: str, title: str, *, visibility: str = "") -> None:
    session.page.get_by_role("link", name=f"New {kind}", exact=True).click()
    session.page.get_by_label("Title", exact=True).fill(title)
    session.page.get_by_label("Description").fill(f"{title}: ask me about it.\nWeekends work best.")
    session.page.get_by_label("Category").fill("tools")
    if visibility:
        audience(session, visibility).check()
    session.page.get_by_role("button", name=f"Post {kind}").click()
    expect(session.page.get_by_role("heading", level=1)).to_have_text(title)


def test_steward_shares_an_offer_and_keeps_a_need_in_the_community(desktop: Session) -> None:
    page = desktop.page
    desktop.goto("/")
    expect(page).to_have_url(re.compile(r"/signin$"))
    expect(page.get_by_role("heading", name=f"Sign in to {COMMUNITY_NAME}")).to_be_visible()
    desktop.shot("signin")
    desktop.check_accessibility("signin")
    desktop.sign_in()
    expect(page).to_have_url(re.compile(r"/listings$"))
    expect(page.get_by_role("status")).to_contain_text(f"Welcome, {STEWARD}.")
    expect(page.locator(".site-header")).to_contain_text(COMMUNITY_NAME)
    expect(page.locator(".account")).to_contain_text(STEWARD)

    offer, need = unique("Ladder, 3 m"), unique("Help moving a sofa")
    page.get_by_role("link", name="New offer", exact=True).click()
    expect(audience(desktop, "community")).to_be_checked()  # no partner yet: nothing wider
    warning = page.locator("#no-partner-warning")
    expect(warning).to_be_hidden()
    audience(desktop, "partners").check()
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("has no active partner community yet")
    audience(desktop, "public").check()
    expect(warning).to_be_hidden()
    page.get_by_label("Title", exact=True).fill(offer)
    desktop.shot("new-offer-form")
    desktop.check_accessibility("new-offer-form")
    page.get_by_role("button", name="Post offer").click()
    expect(page.get_by_role("status")).to_contain_text("is posted")
    expect(page.locator(".listing-detail .badge--public")).to_have_text("Who can see it: Everyone")
    expect(page.locator(".listing-detail .origin--local")).to_have_text("From our community")
    desktop.shot("offer-detail")
    desktop.check_accessibility("offer-detail")

    post_listing(desktop, "need", need)
    expect(page.locator(".listing-detail .badge--community")).to_contain_text("Only our community")

    page.get_by_role("link", name="Listings", exact=True).click()
    expect(badge(desktop, offer, "public")).to_be_visible()
    expect(badge(desktop, offer, "public")).to_have_text("Who can see it: Everyone")
    expect(badge(desktop, offer, "public").locator("svg")).to_be_visible()
    expect(card(desktop, need)).not_to_contain_text("Everyone")
    expect(badge(desktop, need, "community")).to_have_text("Who can see it: Only our community")
    titles = page.locator(".listing-card__title").all_inner_texts()
    assert titles.index(need) < titles.index(offer), "newest first"
    desktop.shot("listings")
    desktop.check_accessibility("listings")


def test_author_edits_closes_and_deletes_a_listing(desktop: Session) -> None:
    page = desktop.page
    desktop.sign_in()
    title = unique("Pressure washer")
    post_listing(desktop, "offer", title, visibility="public")

    page.get_by_role("link", name="Edit", exact=True).click()
    expect(audience(desktop, "public")).to_be_checked()
    page.get_by_label("Title", exact=True).fill(f"{title} (with hose)")
    audience(desktop, "partners").check()
    desktop.shot("edit-form")
    desktop.check_accessibility("edit-form")
    page.get_by_role("button", name="Save changes").click()
    expect(page.get_by_role("status")).to_contain_text("Your changes are saved.")
    expect(page.get_by_role("status")).to_contain_text("no active partner community yet")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{title} (with hose)")
    expect(page.locator(".listing-detail .badge--partners")).to_contain_text("Partner communities")

    page.get_by_role("button", name="Close listing").click()
    expect(page.locator(".listing-detail .badge--closed")).to_have_text("Closed")
    desktop.shot("closed-detail")
    desktop.check_accessibility("closed-detail")
    page.get_by_role("button", name="Reopen listing").click()
    expect(page.locator(".listing-detail .badge--closed")).to_have_count(0)

    page.get_by_role("link", name="Delete…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Delete “")
    desktop.shot("delete-confirm")
    desktop.check_accessibility("delete-confirm")
    page.get_by_role("button", name="Delete for good").click()
    expect(page).to_have_url(re.compile(r"/listings$"))
    expect(page.get_by_role("status")).to_contain_text("is deleted")
    expect(card(desktop, title)).to_have_count(0)


def test_form_errors_keep_what_was_typed(desktop: Session) -> None:
    page = desktop.page
    desktop.sign_in()
    page.get_by_role("link", name="New need", exact=True).click()
    page.get_by_label("Title", exact=True).fill("   ")
    page.get_by_label("Description").fill("Any size will do.")
    page.get_by_role("radio", name=re.compile("^At a point I choose")).check()
    page.get_by_text("Coordinates", exact=True).click()
    page.get_by_label("Latitude").fill("somewhere")
    page.get_by_role("button", name="Post need").click()
    expect(page.get_by_role("alert")).to_contain_text("Nothing was saved yet.")
    expect(page.locator("#title-error")).to_have_text("Please fill this in.")
    expect(page.get_by_label("Description")).to_have_value("Any size will do.")
    expect(page.get_by_label("Latitude")).to_have_value("somewhere")
    desktop.shot("form-errors")
    desktop.check_accessibility("form-errors")


def test_member_cannot_edit_the_stewards_listing(desktop: Session) -> None:
    page = desktop.page
    desktop.sign_in()
    title = unique("Sewing machine")
    post_listing(desktop, "offer", title)
    listing_url = page.url
    page.get_by_role("button", name="Sign out").click()

    desktop.sign_in(MEMBER)
    page.goto(listing_url)
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    expect(page.get_by_role("link", name="Edit", exact=True)).to_have_count(0)
    response = page.goto(listing_url + "/edit")
    assert response is not None and response.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not allowed")
    desktop.shot("forbidden")
    desktop.check_accessibility("forbidden")


def test_sign_out_returns_to_sign_in(desktop: Session) -> None:
    page = desktop.page
    desktop.sign_in(password="wrong password")
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    desktop.shot("signin-error")
    desktop.check_accessibility("signin-error")
    desktop.sign_in()
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/signin$"))
    expect(page.get_by_role("status")).to_have_text("You have signed out.")
    desktop.goto("/listings")
    expect(page).to_have_url(re.compile(r"/signin\?next="))


def test_keyboard_focus_is_visible(desktop: Session) -> None:
    page = desktop.page
    desktop.goto("/signin")
    page.keyboard.press("Tab")
    page.keyboard.press("Tab")
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none"


def test_pages_fit_a_phone_screen(phone: Session) -> None:
    page = phone.page

    def fits() -> None:
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"

    phone.goto("/signin")
    fits()
    phone.shot("signin")
    phone.check_accessibility("signin")
    phone.sign_in()
    title = unique("Child seat for a long trip to the coast and back again")
    post_listing(phone, "need", title, visibility="public")
    fits()
    phone.shot("need-detail")
    phone.check_accessibility("need-detail")
    page.get_by_role("link", name="Listings", exact=True).click()
    expect(badge(phone, title, "public")).to_be_visible()
    fits()
    phone.shot("listings")
    phone.check_accessibility("listings")
    page.get_by_role("link", name="New offer", exact=True).click()
    audience(phone, "public").check()
    fits()
    phone.shot("new-offer-form")
    phone.check_accessibility("new-offer-form")


def test_a_point_picked_on_the_map_is_saved_with_its_precision(phone: Session) -> None:
    page = phone.page
    phone.sign_in(MEMBER)
    title = unique("Wheelbarrow")
    phone.goto("/listings/new?kind=offer")
    expect(page.get_by_role("radio", name=re.compile("^Where "))).to_be_checked()
    page.get_by_label("Title", exact=True).fill(title)
    place_map = page.get_by_role("region", name="Map: click to choose where it is")
    expect(place_map).to_be_visible()
    place_map.scroll_into_view_if_needed()
    box = place_map.bounding_box()
    assert box is not None
    page.mouse.click(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4)
    expect(page.get_by_role("radio", name=re.compile("^At a point I choose"))).to_be_checked()
    expect(page.locator("#place-status")).to_contain_text("Point set to")
    expect(page.get_by_label("Latitude")).not_to_have_value("")
    picked = page.get_by_label("Latitude").input_value()
    page.get_by_role("radio", name=re.compile("^Exact point")).check()
    fits_phone(phone)
    phone.shot("new-offer-picked-point")
    phone.check_accessibility("new-offer-picked-point")
    page.get_by_role("button", name="Post offer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    location = page.locator(".facts div").filter(has_text="Location")
    expect(location).to_contain_text(f"{float(picked):.4f}")
    expect(location).to_contain_text("exact; about 1 km for other communities")
    fits_phone(phone)
    phone.shot("offer-with-place")
    phone.check_accessibility("offer-with-place")


def test_the_form_works_without_javascript(chromium: Any, running_node: RunningNode) -> None:
    """The place picker's fallback: the radio, then coordinates behind a disclosure."""
    device = {**PHONE, "java_script_enabled": False}
    with tab(chromium, running_node.base_url, "nojs", device) as session:
        page = session.page
        session.sign_in(MEMBER)
        title = unique("Tandem bicycle")
        session.goto("/listings/new?kind=offer")
        expect(page.locator("#place-map")).to_be_hidden()
        page.get_by_label("Title", exact=True).fill(title)
        page.get_by_role("radio", name=re.compile("^At a point I choose")).check()
        page.get_by_text("Coordinates", exact=True).click()
        page.get_by_label("Latitude").fill("51.5412")
        page.get_by_label("Longitude").fill("-0.1433")
        page.get_by_role("radio", name=re.compile("^Area")).check()
        audience(session, "partners").check()
        expect(page.locator("#no-partner-warning")).to_be_visible()
        fits_phone(session)
        session.shot("new-offer-form")  # axe needs scripts; the JS tests check this form
        page.get_by_role("button", name="Post offer").click()
        expect(page.get_by_role("heading", level=1)).to_have_text(title)
        expect(page.get_by_role("status")).to_contain_text("no active partner community yet")
        location = page.locator(".facts div").filter(has_text="Location")
        expect(location).to_contain_text("51.5000, -0.1000 (within about 10 km)")
        session.shot("offer-detail")
        session.goto("/listings/mine?q=tandem")
        expect(card(session, title)).to_be_visible()
        expect(badge(session, title, "partners")).to_have_text(
            "Who can see it: Partner communities"
        )
        fits_phone(session)
        session.shot("my-listings")
