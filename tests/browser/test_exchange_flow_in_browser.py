"""An exchange across two real nodes, done entirely in the browser, and the flows it makes.

Alder (A) and Birch (B) run as `commons-node serve` processes on loopback. B
learns A as a peer, so A's public listings are mirrored on B. A member of B
opens one of them, requests it, A's member accepts and writes, B's member
completes; both "My exchanges" pages end completed. A's steward then sees the
hour leave in the flows page, in the table and drawn as a Sankey diagram.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.browser.conftest import (
    ALDER_AND_BIRCH,
    DESKTOP,
    MEMBER,
    PHONE,
    STEWARD,
    Node,
    Session,
    check_on_desktop_and_phone,
    eventually,
    started_nodes,
    tab,
    unavailable,
)

try:
    from playwright.sync_api import expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser
TITLE = "Alder public apple press"


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Node]]:
    with started_nodes(tmp_path_factory.mktemp("exchange-nodes"), ALDER_AND_BIRCH) as nodes:
        yield nodes


def look(session: Session, phone: Session, label: str, user: str = MEMBER) -> None:
    """Screenshot and check the page on a desktop, then at 390 px, which must fit."""
    check_on_desktop_and_phone(session, phone, label, user)


def exchange_card(session: Session) -> Any:
    return session.page.locator("article.exchange").filter(has_text=TITLE)


def reload_shows(session: Session, path: str, text: str) -> Any:
    def check() -> bool:
        session.goto(path)
        return exchange_card(session).filter(has_text=text).count() > 0

    return check


def test_a_member_requests_a_remote_listing_and_both_sides_complete_it(
    chromium: Any, nodes: dict[str, Node]
) -> None:
    a, b = nodes["a"], nodes["b"]
    b.api("POST", "/api/v1/discovery/peers", b.token(STEWARD), {"url": a.base_url})
    body = {"kind": "offer", "title": TITLE, "description": "Bring your own apples.",
            "category": "tools", "visibility": "public"}  # fmt: skip
    a.api("POST", "/api/v1/listings", a.token(MEMBER), body)

    with (
        tab(chromium, a.base_url, "desktop", DESKTOP) as alder,
        tab(chromium, b.base_url, "desktop", DESKTOP) as birch,
        tab(chromium, a.base_url, "phone", PHONE) as alder_phone,
        tab(chromium, b.base_url, "phone", PHONE) as birch_phone,
    ):
        birch.sign_in_as(MEMBER)

        def mirrored() -> bool:
            birch.goto("/network")
            return birch.page.get_by_role("link", name=TITLE).count() > 0

        eventually(mirrored, "B mirrors A's public listing")
        birch.page.get_by_role("link", name=TITLE).click()
        page = birch.page
        expect(page.get_by_role("heading", level=1)).to_have_text(TITLE)
        expect(page.locator(".facts")).to_contain_text("Alder Commons")
        expect(page.locator(".listing-detail .origin--public")).to_have_text(
            "From the public network"
        )
        expect(page.locator(".listing-detail .badge--public")).to_have_text(
            "Who can see it: Everyone"
        )
        look(birch, birch_phone, "exchange-remote-listing-detail")

        page.get_by_label("Note").fill("Could we use it on Saturday morning?")
        page.get_by_label("Hours").fill("2")
        page.get_by_role("button", name="Request", exact=True).click()
        expect(page.get_by_role("status")).to_contain_text(f"Your request for “{TITLE}” is sent.")
        card = exchange_card(birch)
        expect(card).to_contain_text("Waiting for an answer")
        expect(card).to_contain_text("Across communities")
        look(birch, birch_phone, "exchange-birch-requested")

        alder.sign_in_as(MEMBER)
        eventually(reload_shows(alder, "/exchanges", "Waiting for an answer"), "A hears of it")
        card = exchange_card(alder)
        expect(card).to_contain_text("Could we use it on Saturday morning?")
        expect(card).to_contain_text("Birch Commons")
        look(alder, alder_phone, "exchange-alder-request-received")
        card.get_by_role("button", name="Accept").click()
        expect(alder.page.get_by_role("status")).to_contain_text("Accepted")
        card = exchange_card(alder)
        card.get_by_label(re.compile(r"^Write to")).fill("Saturday at ten, by the river shed.")
        card.get_by_role("button", name="Send").click()
        expect(exchange_card(alder).locator(".message--mine")).to_contain_text("ten, by the river")

        eventually(
            reload_shows(birch, "/exchanges", "Saturday at ten, by the river shed."),
            "B sees the acceptance and the message",
        )
        card = exchange_card(birch)
        expect(card.locator(".badge--exchange-accepted")).to_have_text("Status: Accepted")
        card.get_by_label(re.compile(r"^Write to")).fill("Perfect, see you there.")
        card.get_by_role("button", name="Send").click()
        exchange_card(birch).get_by_role("button", name="Mark as completed").click()
        expect(exchange_card(birch).locator(".badge--exchange-completed")).to_have_text(
            "Status: Completed"
        )
        look(birch, birch_phone, "exchange-birch-completed")

        eventually(reload_shows(alder, "/exchanges", "Completed"), "A sees it completed")
        expect(exchange_card(alder)).to_contain_text("Perfect, see you there.")
        look(alder, alder_phone, "exchange-alder-completed")

        alder.sign_in_as(STEWARD)
        alder.goto("/steward")
        alder.page.get_by_role("link", name="Flows between communities").click()
        flows = alder.page
        expect(flows.get_by_role("heading", level=1)).to_have_text("Flows between communities")
        stats = flows.locator(".flow-totals")
        expect(stats.locator(".stat").filter(has_text="Given to others")).to_contain_text("2 h")
        expect(stats.locator(".stat").filter(has_text="Leakage")).to_contain_text("100%")
        rows = flows.locator(".flow-table tbody tr")
        expect(rows).to_have_count(1)
        expect(rows.first.locator("td")).to_have_text(["Alder Commons", "Birch Commons", "1", "2"])
        balance = flows.locator(".balance-table tbody tr")
        expect(balance.locator("th")).to_have_text("Birch Commons")
        expect(balance.locator("td").last).to_have_text("\N{MINUS SIGN}2")
        chart = flows.locator("figure.flow-chart")
        expect(chart).to_be_visible()
        expect(chart.locator("canvas#flow-chart")).to_be_visible()
        drawn = flows.evaluate(
            "() => { const c = window.Chart && Chart.getChart('flow-chart');"
            " return c ? c.data.datasets[0].data.map(d => [d.from, d.to, d.flow]) : null; }"
        )
        assert drawn == [[f"p:{a.base_url}/c/alder", f"r:{b.base_url}/c/birch", 2]]
        look(alder, alder_phone, "flows-page", STEWARD)

        flows.goto(a.base_url + "/steward/flows?since=2001-01-01&until=2001-12-31")
        expect(flows.locator(".flow-section")).to_contain_text("No exchanges were completed")
        expect(flows.locator("canvas")).to_have_count(0)
