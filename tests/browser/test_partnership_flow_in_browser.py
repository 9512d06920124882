"""Two stewards form a partnership through the web pages of two real nodes, and end it.

Three `commons-node serve` processes on loopback: Alder (A) and Birch (B)
partner; Cedar (C) follows both publicly and must never receive what they
share only with partners. Stewards use nothing but the pages in Chromium;
listings are posted through the API or the form, and C is checked through
its API and its database. Federation runs in the nodes' background workers,
so every cross-node expectation is polled against a deadline.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    ALDER_AND_BIRCH,
    DESKTOP,
    MEMBER,
    PHONE,
    STEWARD,
    Node,
    NodeSpec,
    Session,
    check_on_desktop_and_phone,
    eventually,
    fits_phone,
    started_nodes,
    tab,
    unavailable,
)
from tests.support.processes import free_port

try:
    from playwright.sync_api import expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser
TITLES = {
    "a_partners": "Alder partners-only cargo bike",
    "a_public": "Alder public apple press",
    "b_partners": "Birch partners-only canoe",
    "b_community": "Birch members-only sewing machine",
    "b_public": "Birch public repair café",
}


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    specs = {
        **ALDER_AND_BIRCH,
        "c": NodeSpec(
            "cedar", "Cedar Commons", "A community that only follows the others publicly."
        ),
    }
    with started_nodes(tmp_path_factory.mktemp("partnership-nodes"), specs) as nodes:
        yield nodes


def shows(session: Session, path: str, selector: str, text: str) -> Callable[[], bool]:
    """A check that reloads `path` and looks for `text` in `selector`."""

    def check() -> bool:
        session.goto(path)
        return session.page.locator(selector).filter(has_text=text).count() > 0

    return check


def both(desktop: Session, phone: Session, label: str, user: str = STEWARD) -> None:
    """Screenshot what the desktop shows, and the same page at 390 px, which must fit."""
    check_on_desktop_and_phone(desktop, phone, label, user)


def propose(steward: Session, target: Node) -> None:
    page = steward.page
    page.get_by_role("link", name=re.compile(r"^Steward")).click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Steward dashboard")
    page.get_by_role("link", name="Propose a partnership").click()
    page.get_by_label("Community handle or address").fill(f"nobody@127.0.0.1:{free_port()}")
    page.get_by_role("button", name="Look up community").click()
    expect(page.get_by_role("alert")).to_contain_text("could not be reached")
    steward.shot("alder-propose-error")
    steward.check_accessibility("alder-propose-error")
    page.get_by_label("Community handle or address").fill(target.handle)
    page.get_by_role("button", name="Look up community").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Propose a partnership to {target.name}?"
    )
    preview = page.locator(".remote-preview")
    expect(preview).to_contain_text("Neighbours on Birch Hill")
    expect(preview.locator(".stat").filter(has_text="Public offers").locator("dd")).to_have_text(
        "0"
    )
    expect(preview.locator(".stat").filter(has_text="Public needs").locator("dd")).to_have_text("1")
    page.get_by_label("Message to their stewards").fill("Alder would love to share with Birch.")
    steward.shot("alder-propose-preview")
    steward.check_accessibility("alder-propose-preview")
    page.get_by_role("button", name="Send proposal").click()
    expect(page.get_by_role("status")).to_contain_text(f"Proposal sent to {target.name}.")
    expect(page.locator("#awaiting-them")).to_contain_text(target.name)


def approve(steward: Session, phone: Session, proposer: Node) -> None:
    page = steward.page
    eventually(
        shows(steward, "/listings", ".site-nav .nav-count", "1"),
        "B's steward sees one unread notification in the header",
    )
    steward.shot("birch-notification-count")
    steward.check_accessibility("birch-notification-count")
    page.get_by_role("link", name=re.compile(r"^Steward")).click()
    waiting = page.locator("#awaiting-us")
    expect(waiting).to_contain_text(proposer.name)
    expect(waiting).to_contain_text("Alder would love to share with Birch.")
    expect(page.locator("#notifications")).to_contain_text(f"{proposer.name} (alder@")
    both(steward, phone, "birch-dashboard-pending")
    waiting.get_by_role("link", name="Reject…").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Reject the proposal")
    both(steward, phone, "birch-reject-confirm")
    page.get_by_role("link", name="Cancel").click()
    page.locator("#awaiting-us").get_by_role("link", name="Approve…").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        f"Become partners with {proposer.name}?"
    )
    expect(page.locator(".share-list")).to_contain_text("1 listing is shared with partners.")
    expect(page.locator(".share-list")).to_contain_text("1 public listing is visible")
    both(steward, phone, "birch-approve-confirm")
    page.get_by_role("button", name="Approve partnership").click()
    expect(page.get_by_role("status")).to_contain_text(f"You are now partners with {proposer.name}")
    expect(page.locator("#active")).to_contain_text(proposer.name)
    expect(page.locator(".site-nav .nav-count")).to_have_count(0)
    steward.shot("birch-dashboard-active")
    steward.check_accessibility("birch-dashboard-active")


def partner_card_is_marked(member: Session, title: str, partner: Node) -> None:
    page = member.page
    card = page.locator("article.listing-card").filter(has_text=title)
    expect(card).to_have_class(re.compile(r"listing-card--from-partner"))
    expect(card.locator(".origin--partner")).to_have_text("From a partner")
    expect(card.locator(".badge--partners")).to_have_text("Who can see it: Partner communities")
    expect(card.locator(".listing-card__origin")).to_have_text(partner.name)
    link = card.get_by_role("link", name=title)
    expect(link).to_have_attribute("href", re.compile(r"^/listings/[0-9a-f]{32}$"))


def test_stewards_form_and_dissolve_a_partnership_in_the_browser(
    chromium: Any, nodes: dict[str, Node]
) -> None:
    a, b, c = nodes["a"], nodes["b"], nodes["c"]
    cedar = c.token(STEWARD)
    for peer in (a, b):
        c.api("POST", "/api/v1/discovery/peers", cedar, {"url": peer.base_url})
    a_member = a.token(MEMBER)
    for key, visibility in (("a_partners", "partners"), ("a_public", "public")):
        body = {"kind": "offer", "title": TITLES[key], "visibility": visibility}
        a.api("POST", "/api/v1/listings", a_member, body)
    body = {"kind": "need", "title": TITLES["b_public"], "visibility": "public"}
    b.api("POST", "/api/v1/listings", b.token(MEMBER), body)

    with (
        tab(chromium, a.base_url, "desktop", DESKTOP) as alder,
        tab(chromium, b.base_url, "desktop", DESKTOP) as birch,
        tab(chromium, a.base_url, "phone", PHONE) as alder_phone,
        tab(chromium, b.base_url, "phone", PHONE) as birch_phone,
    ):
        birch.sign_in_as(MEMBER)
        post_by_form(birch, TITLES["b_partners"], "Partner communities")
        post_by_form(birch, TITLES["b_community"], None)

        alder.sign_in_as(STEWARD)
        propose(alder, b)
        birch.sign_in_as(STEWARD)
        approve(birch, birch_phone, a)
        eventually(shows(alder, "/steward", "#active", b.name), "A sees the partnership active")
        both(alder, alder_phone, "alder-dashboard-active")

        for session, partner, title in (
            (alder, b, TITLES["b_partners"]),
            (birch, a, TITLES["a_partners"]),
        ):
            session.sign_in_as(MEMBER)
            eventually(
                shows(session, "/network?origin=partner", "article", title),
                f"a member of {partner.name}'s partner sees {title!r}",
            )
            partner_card_is_marked(session, title, partner)
            session.goto("/network")
            expect(session.page.locator("article").filter(has_text=title)).to_have_count(1)
        expect(alder.page.locator("article").filter(has_text=TITLES["b_community"])).to_have_count(
            0
        )
        both(alder, alder_phone, "alder-listings-network", MEMBER)

        eventually(
            lambda: TITLES["a_public"] in c.mirrored_titles(), "C mirrors A's public listing"
        )
        everything = "/api/v1/listings?include_public=true&include_partners=true"
        c_titles = {item["title"] for item in c.api("GET", everything, cedar)["items"]}
        assert TITLES["a_public"] in c_titles
        for secret in (TITLES["a_partners"], TITLES["b_partners"], TITLES["b_community"]):
            assert secret not in c_titles and secret not in c.mirrored_titles()

        alder.sign_in_as(STEWARD)
        alder.goto("/steward")
        alder.page.locator("#active").get_by_role("link", name="Dissolve…").click()
        expect(alder.page.get_by_role("heading", level=1)).to_have_text(
            f"End the partnership with {b.name}?"
        )
        both(alder, alder_phone, "alder-dissolve-confirm")
        alder.page.get_by_role("button", name="End partnership").click()
        expect(alder.page.get_by_role("status")).to_contain_text("has ended")
        expect(alder.page.locator("#history")).to_contain_text(b.name)
        both(alder, alder_phone, "alder-dashboard-history")

        alder.sign_in_as(MEMBER)
        for session, title in ((alder, TITLES["b_partners"]), (birch, TITLES["a_partners"])):
            listed = shows(session, "/network", "article", title)
            eventually(lambda listed=listed: not listed(), f"{title!r} is gone again")
        assert TITLES["b_partners"] not in a.mirrored_titles()
        assert TITLES["a_partners"] not in b.mirrored_titles()
        assert c.mirrored_titles().isdisjoint({TITLES["a_partners"], TITLES["b_partners"]})

        public_page(birch, birch_phone, b)
        propose_on_phone(alder_phone, b)


def post_by_form(session: Session, title: str, audience: str | None) -> None:
    page = session.page
    page.get_by_role("link", name="New offer", exact=True).click()
    page.get_by_label("Title", exact=True).fill(title)
    if audience:
        page.get_by_role("radio", name=re.compile("^" + audience)).check()
    page.get_by_role("button", name="Post offer").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(title)


def public_page(desktop: Session, phone: Session, node: Node) -> None:
    """The actor URL, opened in a browser by someone signed in nowhere."""
    for session in (desktop, phone):
        session.page.context.clear_cookies()
        session.goto(f"/c/{node.slug}")
        expect(session.page).to_have_url(re.compile(rf"/communities/{node.slug}$"))
        expect(session.page.get_by_role("heading", level=1)).to_have_text(node.name)
        main = session.page.locator("main")
        expect(main.locator(".listing-card")).to_have_text([re.compile(TITLES["b_public"])])
        for hidden in (TITLES["b_partners"], TITLES["b_community"], TITLES["a_public"]):
            expect(main).not_to_contain_text(hidden)
        if session is phone:
            fits_phone(phone)
        session.shot(f"{node.slug}-community-page")
        session.check_accessibility(f"{node.slug}-community-page")


def propose_on_phone(phone: Session, target: Node) -> None:
    phone.sign_in_as(STEWARD)
    phone.goto("/steward/partnerships/new")
    fits_phone(phone)
    phone.shot("alder-propose-form")
    phone.check_accessibility("alder-propose-form")
    phone.page.get_by_label("Community handle or address").fill(target.handle)
    phone.page.get_by_role("button", name="Look up community").click()
    expect(phone.page.get_by_role("heading", level=1)).to_contain_text(target.name)
    fits_phone(phone)
    phone.shot("alder-propose-preview")
    phone.check_accessibility("alder-propose-preview")
