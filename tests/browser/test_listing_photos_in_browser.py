"""A member posts an offer with a photo from a phone, in a real Chromium, without scripts."""

from __future__ import annotations

import uuid

import pytest

from tests.browser.conftest import MEMBER, Session, fits_phone, unavailable
from tests.support.images import scenic_photo

try:
    from playwright.sync_api import expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser


def test_member_posts_an_offer_with_a_photo_from_a_phone(phone: Session) -> None:
    page = phone.page
    phone.sign_in(MEMBER)
    title = f"Garden cart {uuid.uuid4().hex[:4]}"
    page.get_by_role("link", name="New offer", exact=True).click()
    photo_input = page.get_by_label("Choose or take a photo")
    expect(photo_input).to_have_attribute("accept", "image/*")
    page.get_by_label("Title", exact=True).fill(title)
    photo_input.set_input_files(
        {"name": "IMG_2041.jpg", "mimeType": "image/jpeg", "buffer": scenic_photo()}
    )
    page.get_by_label("What the photo shows").fill("A red garden cart on the lawn")
    fits_phone(phone)
    phone.shot("offer-form-with-photo")
    phone.check_accessibility("offer form with photo")
    page.get_by_role("button", name="Post offer").click()

    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    photo = page.get_by_role("img", name="A red garden cart on the lawn")
    expect(photo).to_be_visible()
    assert photo.evaluate("img => img.complete && img.naturalWidth") == 1280
    assert photo.get_attribute("src").startswith("/media/")
    expect(page.locator("figcaption")).to_have_text("A red garden cart on the lawn")
    fits_phone(phone)
    phone.shot("offer-with-photo")
    phone.check_accessibility("offer with photo")

    page.get_by_role("link", name="Listings", exact=True).click()
    thumb = page.locator("article.listing-card", has_text=title).locator("img")
    expect(thumb).to_be_visible()
    assert thumb.evaluate("img => img.naturalWidth") == 320
    fits_phone(phone)
    phone.shot("listings-with-thumbnail")
    phone.check_accessibility("listings with a thumbnail")


def test_a_file_that_is_not_a_photo_is_refused_on_the_form(desktop: Session) -> None:
    page = desktop.page
    desktop.sign_in(MEMBER)
    desktop.goto("/listings/new?kind=offer")
    page.get_by_label("Title", exact=True).fill("Lawn mower")
    page.get_by_label("Choose or take a photo").set_input_files(
        {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a photo at all"}
    )
    page.get_by_label("What the photo shows").fill("The mower")
    page.get_by_role("button", name="Post offer").click()
    expect(page.get_by_text("That is not a JPEG, PNG or WebP image.")).to_be_visible()
    expect(page.get_by_label("Title", exact=True)).to_have_value("Lawn mower")
    expect(page.get_by_label("What the photo shows")).to_have_value("The mower")
    desktop.shot("photo-refused")
    desktop.check_accessibility("photo refused")
