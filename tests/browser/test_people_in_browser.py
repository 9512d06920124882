"""People in a real Chromium: a steward invites, the newcomer joins on a phone and is
signed in, then the steward deactivates them and their open tab is signed out. Every
page passes axe and fits a 390 px screen."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.browser.conftest import (
    MEMBER,
    PASSWORD,
    PHONE,
    Session,
    fits_phone,
    tab,
    unavailable,
)
from tests.support.processes import RunningNode

try:
    from playwright.sync_api import expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser


def fits_390(session: Session) -> None:
    """As `fits_phone`, against the phone's width itself: on a mobile viewport a page
    that overflows widens the layout viewport, and `innerWidth` with it."""
    fits_phone(session)
    width = session.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["viewport"]["width"], f"{session.page.url} is {width}px wide"


def invite_link(steward: Session) -> str:
    page = steward.page
    page.get_by_role("link", name=re.compile(r"^Steward")).click()
    page.get_by_role("link", name="People", exact=True).click()
    page.get_by_role("link", name="Invitations", exact=True).click()
    page.get_by_label("The link works for").select_option(label="1 day")
    page.get_by_role("button", name="Make invitation link").click()
    link = page.get_by_label(re.compile("Copy this link"))
    expect(link).to_have_value(re.compile(r"/join/"))
    return str(link.input_value())


def test_invited_newcomer_joins_and_is_signed_out_when_deactivated(
    desktop: Session, chromium: Any, running_node: RunningNode
) -> None:
    username = f"nia_{uuid.uuid4().hex[:4]}"
    desktop.sign_in()
    url = invite_link(desktop)
    expect(desktop.page.locator(".invite").first).to_contain_text("Not used yet")
    desktop.shot("invitations")
    desktop.check_accessibility("invitations")

    with tab(chromium, running_node.base_url, "phone-newcomer", PHONE) as newcomer:
        page = newcomer.page
        page.goto(url)
        expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("^Join "))
        newcomer.check_accessibility("join")
        fits_390(newcomer)
        page.get_by_label("Username").fill("Nia K")
        page.get_by_label("Display name").fill("Nia K.")
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Join and sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("2 to 32 characters")
        expect(page.get_by_label("Username")).to_have_value("Nia K")
        expect(page.get_by_label("Display name")).to_have_value("Nia K.")
        newcomer.shot("join-refused")
        newcomer.check_accessibility("join refused")

        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Join and sign in").click()
        expect(page).to_have_url(re.compile(r"/listings$"))
        expect(page.get_by_role("status")).to_contain_text("Nia K.")

        page.get_by_role("link", name=re.compile(username)).click()
        expect(page.get_by_role("heading", name="Your account")).to_be_visible()
        expect(page.get_by_label("Display name")).to_have_value("Nia K.")
        newcomer.shot("account")
        newcomer.check_accessibility("account")
        fits_390(newcomer)

        desktop.goto("/steward/invitations")  # not reload: that would post the form again
        expect(desktop.page.locator(".invite").first).to_contain_text(f"Used by {username}")
        desktop.page.get_by_role("link", name="Members", exact=True).click()
        desktop.page.get_by_label("Search by username or name").fill(username)
        desktop.page.get_by_role("button", name="Search").click()
        expect(desktop.page.locator(".person")).to_have_count(1)
        desktop.shot("members")
        desktop.check_accessibility("members")
        desktop.page.get_by_role("button", name=f"Deactivate {username}").click()
        expect(desktop.page.get_by_role("status")).to_contain_text("is deactivated")
        expect(desktop.page.locator(".person")).to_contain_text("deactivated")

        page.reload()
        expect(page).to_have_url(re.compile(r"/signin\?next="))
        page.get_by_label("Username").fill(username)
        page.get_by_label("Password").fill(PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_contain_text("do not match")


def test_password_link_and_members_page_on_a_phone(
    phone: Session, chromium: Any, running_node: RunningNode
) -> None:
    phone.sign_in()
    page = phone.page
    page.get_by_role("link", name=re.compile(r"^Steward")).click()
    page.get_by_role("link", name="People", exact=True).click()
    expect(page.get_by_role("heading", name="People")).to_be_visible()
    fits_390(phone)
    phone.shot("members")
    phone.check_accessibility("members on a phone")
    page.get_by_label("Search by username or name").fill(MEMBER)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("button", name=f"Password link for {MEMBER}").click()
    link = page.get_by_label(re.compile("Give this link"))
    url = str(link.input_value())
    fits_390(phone)
    phone.check_accessibility("password link shown")

    with tab(chromium, running_node.base_url, "phone-reset", PHONE) as member:
        member.page.goto(url)
        expect(member.page.get_by_role("heading", level=1)).to_have_text("Choose a new password")
        member.check_accessibility("reset")
        fits_390(member)
        member.page.get_by_label("New password", exact=True).fill(PASSWORD)
        member.page.get_by_label("New password again").fill(PASSWORD)
        member.page.get_by_role("button", name="Set password").click()
        expect(member.page.get_by_role("status")).to_contain_text("Password set")
        member.shot("reset-done")
        member.page.goto(url)
        expect(member.page.get_by_role("heading", level=1)).to_have_text(
            "This password link cannot be used"
        )
        member.check_accessibility("used reset link")
