"""The federation page and the header in a real Chromium, checked with axe-core.

Alder (whose first steward is the node's operator) has unread notifications
of both kinds, so the header shows both counts; it must still be one line at
1280 px and fit 390 px. The steward reaches the Federation page through the
header's "Steward" link, follows Birch with the page's form, blocks a domain
with a reason and unblocks it, and sees a failing host (written into the
database as the delivery worker leaves one) with its failure and next
attempt. The Notifications page is checked as well.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session as DbSession

from storage.models import Community, Delivery, PeerHost
from tests.browser.conftest import (
    DESKTOP,
    MEMBER,
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

try:
    from playwright.sync_api import expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser
DOWN_HOST = "127.0.0.1:9"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    specs = {
        "alder": NodeSpec("alder", "Alder Valley Tool Library"),
        "birch": NodeSpec("birch", "Birch Commons", member=False),
    }
    with started_nodes(tmp_path_factory.mktemp("federation-page"), specs) as nodes:
        yield nodes


@pytest.fixture(scope="module")
def alder(nodes: dict[str, Node]) -> Node:
    """Alder with a proposal from Birch (a steward notification), a member's request
    for the steward's listing (a member notification) and a host that keeps failing."""
    alder, birch = nodes["alder"], nodes["birch"]
    steward, member = alder.token(STEWARD), alder.token(MEMBER)
    birch.api(
        "POST", "/api/v1/partnerships/propose", birch.token(STEWARD), {"target": alder.handle}
    )
    eventually(
        lambda: bool(alder.api("GET", "/api/v1/partnerships", steward)["items"]),
        "Birch's proposal reaches Alder",
    )
    listing = alder.api("POST", "/api/v1/listings", steward, {"kind": "offer", "title": "Ladder"})
    alder.api("POST", "/api/v1/exchanges", member, {"listing": listing["id"], "hours": 1})
    failing_host(alder)
    return alder


def failing_host(node: Node) -> None:
    """One delivery queued for a host that refused three times, as the worker leaves it."""
    now = datetime.now(UTC)
    engine = create_engine(f"sqlite:///{node.database}")
    try:
        with DbSession(engine) as db:
            sender = db.scalars(select(Community.id).where(Community.is_local)).one()
            db.add(
                Delivery(
                    activity_id=f"{node.base_url}/activities/queued-1",
                    sender_community_id=sender,
                    target_inbox=f"http://{DOWN_HOST}/inbox",
                    host=DOWN_HOST,
                    body="{}",
                    attempts=3,
                    next_attempt_at=now,
                    last_error="could not connect (connection refused)",
                )
            )
            db.add(
                PeerHost(
                    host=DOWN_HOST,
                    consecutive_failures=3,
                    backoff_until=now + timedelta(hours=2),
                    last_failure_at=now,
                    last_error="could not connect (connection refused)",
                )
            )
            db.commit()
    finally:
        engine.dispose()


@pytest.fixture
def tabs(chromium: Any, alder: Node) -> Iterator[tuple[Session, Session]]:
    with (
        tab(chromium, alder.base_url, "desktop", DESKTOP) as desktop,
        tab(chromium, alder.base_url, "phone", PHONE) as phone,
    ):
        yield desktop, phone


def fits_390(session: Session) -> None:
    """No sideways scrolling, measured against the phone's width itself."""
    fits_phone(session)
    width = session.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["viewport"]["width"], f"{session.page.url} is {width}px wide"


HEADER_ROWS = """() => {
  const boxes = [...document.querySelectorAll('.site-header__inner > *, .site-nav > a')]
    .map(e => e.getBoundingClientRect())
    .filter(b => b.height > 0);
  const top = Math.min(...boxes.map(b => b.top));
  const bottom = Math.max(...boxes.map(b => b.bottom));
  const tallest = Math.max(...boxes.map(b => b.height));
  return {span: bottom - top, tallest: tallest, count: boxes.length};
}"""


def header_is_one_line(session: Session) -> None:
    """Every header item and nav link sits on one row: together they span no more
    height than the tallest of them (plus a few pixels of alignment)."""
    rows = session.page.evaluate(HEADER_ROWS)
    assert rows["count"] >= 9, rows
    assert rows["span"] <= rows["tallest"] + 8, f"the header wraps at 1280 px: {rows}"


def test_the_header_of_a_steward_with_both_counts_is_one_line_at_1280(
    tabs: tuple[Session, Session],
) -> None:
    desktop, phone = tabs
    for session in tabs:
        session.sign_in(STEWARD)
    nav = desktop.page.locator(".site-nav")
    expect(nav.locator(".nav-count")).to_have_count(2)
    for path in ("/listings", "/steward/federation", "/notifications"):
        desktop.goto(path)
        header_is_one_line(desktop)
        phone.goto(path)
        fits_390(phone)
    desktop.goto("/listings")
    desktop.shot("header-steward")
    phone.shot("header-steward")
    for name in ("Listings", "My exchanges", "New offer", "New need", "Network"):
        expect(nav.get_by_role("link", name=name, exact=True)).to_be_visible()
    expect(nav.get_by_role("link", name=re.compile(r"^Notifications"))).to_be_visible()
    expect(nav.get_by_role("link", name=re.compile(r"^Steward"))).to_be_visible()


def test_the_notifications_page_is_accessible(tabs: tuple[Session, Session]) -> None:
    for session in tabs:
        session.sign_in(STEWARD)
        session.page.get_by_role("link", name=re.compile(r"^Notifications")).click()
        expect(session.page.get_by_role("heading", level=1)).to_have_text("Notifications")
        # The steward's own notification, and the community's beside it (a proposal).
        own = session.page.locator("section", has=session.page.locator("#notifications-heading"))
        community = session.page.locator(
            "section", has=session.page.locator("#community-notifications-heading")
        )
        expect(own.locator(".notification.is-unread")).to_have_count(1)
        expect(community.locator(".notification.is-unread")).to_have_count(1)
        session.shot("notifications")
        session.check_accessibility("notifications")
    fits_390(tabs[1])


def test_the_steward_follows_blocks_and_sees_a_failing_host_on_the_federation_page(
    tabs: tuple[Session, Session], nodes: dict[str, Node]
) -> None:
    desktop, phone = tabs
    birch = nodes["birch"]
    desktop.sign_in(STEWARD)
    page = desktop.page
    page.get_by_role("link", name=re.compile(r"^Steward")).click()
    page.get_by_role("navigation", name="Steward pages").get_by_role(
        "link", name="Federation"
    ).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Federation")

    down = page.locator(".peer", has=page.get_by_role("heading", name=DOWN_HOST))
    expect(down.locator(".peer-state")).to_have_text("Backing off")
    expect(down).to_contain_text("could not connect (connection refused)")
    expect(down.locator("dt:text('Failures in a row') + dd")).to_have_text("3")
    expect(down.locator("dt:text('Next attempt') + dd time")).to_be_visible()
    expect(down.get_by_role("button", name=re.compile("Retry now"))).to_be_visible()

    page.get_by_label("Node address").fill(birch.base_url)
    page.get_by_role("button", name="Follow node").click()
    expect(page.get_by_role("status")).to_contain_text(f"Following {birch.base_url}")
    birch_host = birch.base_url.removeprefix("http://")
    expect(page.locator(".peer", has=page.get_by_role("heading", name=birch_host))).to_contain_text(
        f"birch@{birch_host}"
    )

    page.get_by_label("Domain to block").fill("bad domain")
    page.get_by_label(re.compile("^Reason")).fill("Fake offers")
    page.get_by_role("button", name="Block domain").click()
    expect(page.get_by_role("alert")).to_contain_text("not a domain")
    expect(page.get_by_label("Reason", exact=False)).to_have_value("Fake offers")
    desktop.check_accessibility("federation-refused-block")
    page.get_by_label("Domain to block").fill("spam.example")
    page.get_by_role("button", name="Block domain").click()
    expect(page.get_by_role("status")).to_contain_text("spam.example is blocked")
    expect(page.locator(".block")).to_contain_text("Fake offers")

    desktop.shot("federation")
    desktop.check_accessibility("federation")
    header_is_one_line(desktop)
    phone.sign_in(STEWARD)
    phone.goto("/steward/federation")
    fits_390(phone)
    phone.shot("federation")
    phone.check_accessibility("federation")

    page.get_by_role("button", name="Unblock spam.example").click()
    expect(page.get_by_role("status")).to_contain_text("spam.example is no longer blocked")
    expect(page.get_by_text("No domain is blocked.")).to_be_visible()
