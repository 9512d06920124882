"""What a real Chromium does with crafted sign-in links, error pages and the API docs.

Every request the browser makes to a host other than the node's is stopped
before it leaves (and recorded), so a regression shows up as a failed test
rather than as traffic to a stranger. Playwright does not route the second leg of
a redirect; there Chromium's resolver rules (conftest) refuse every other name,
and the session fixture fails on the failed request.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlsplit

import pytest

from tests.browser.conftest import MEMBER, PASSWORD, Session, unavailable

try:
    from playwright.sync_api import expect
except ImportError:
    unavailable("the playwright package is not installed (pip install -e '.[test]')")

pytestmark = pytest.mark.browser

# As an attacker writes them into a link: each one leaves the node once a browser
# has stripped the tab or read the backslash.
CRAFTED_NEXT = ["/%09/evil.example/x", "/%5Cevil.example/x", "%2F%2Fevil.example/x"]


@pytest.fixture
def contained(desktop: Session) -> Iterator[tuple[Session, list[str]]]:
    """The desktop tab, with anything not addressed to the node stopped and recorded."""
    node_host = urlsplit(desktop.base_url).netloc
    elsewhere: list[str] = []

    def guard(route: Any) -> None:
        if urlsplit(route.request.url).netloc == node_host:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    desktop.page.context.route("**/*", guard)
    yield desktop, elsewhere
    assert elsewhere == [], f"the browser tried to leave the node: {elsewhere}"


def on_node(session: Session) -> bool:
    return urlsplit(session.page.url).netloc == urlsplit(session.base_url).netloc


@pytest.mark.parametrize("crafted", CRAFTED_NEXT)
def test_signing_in_from_a_crafted_link_stays_on_the_node(
    contained: tuple[Session, list[str]], crafted: str
) -> None:
    session, _ = contained
    page = session.page
    page.context.clear_cookies()
    session.goto(f"/signin?next={crafted}")
    page.get_by_label("Username").fill(MEMBER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/listings$"))
    assert on_node(session), page.url


@pytest.mark.parametrize("crafted", CRAFTED_NEXT)
def test_a_signed_in_visit_to_a_crafted_sign_in_link_stays_on_the_node(
    contained: tuple[Session, list[str]], crafted: str
) -> None:
    """No form here, so the page's form-action policy cannot help: the redirect itself
    must be safe."""
    session, _ = contained
    session.sign_in(MEMBER)
    expect(session.page).to_have_url(re.compile(r"/listings$"))
    session.goto(f"/signin?next={crafted}")
    session.page.wait_for_load_state("load")
    assert on_node(session), session.page.url
    expect(session.page).to_have_url(re.compile(r"/listings$"))


def test_a_line_break_in_next_gets_a_page_not_a_broken_reply(
    contained: tuple[Session, list[str]],
) -> None:
    session, _ = contained
    session.sign_in(MEMBER)
    expect(session.page).to_have_url(re.compile(r"/listings$"))
    crafted = quote("/\r\nSet-Cookie: planted=1", safe="")
    response = session.page.goto(f"{session.base_url}/signin?next={crafted}")
    assert response is not None and response.status == 200
    expect(session.page).to_have_url(re.compile(r"/listings$"))
    cookies = {cookie["name"] for cookie in session.page.context.cookies()}
    assert "planted" not in cookies


def test_an_unknown_page_is_the_styled_error_page(contained: tuple[Session, list[str]]) -> None:
    session, _ = contained
    for path in ("/nonexistent-page", "/listings/not-an-id"):
        response = session.page.goto(session.base_url + path)
        assert response is not None and response.status == 404
        headers = response.headers
        assert "frame-ancestors 'none'" in headers["content-security-policy"]
        assert headers["x-content-type-options"] == "nosniff"
        expect(session.page.get_by_role("heading", level=1)).to_have_text("Not found")
        header = session.page.locator(".site-header")
        expect(header).to_be_visible()
        colour = header.evaluate("element => getComputedStyle(element).backgroundColor")
        assert colour not in ("", "transparent", "rgba(0, 0, 0, 0)"), "the stylesheet applied"


def test_api_docs_render_under_their_policy_with_nothing_remote(
    contained: tuple[Session, list[str]],
) -> None:
    """A CSP violation is a console error, which the session fixture fails on."""
    session, _ = contained
    response = session.page.goto(session.base_url + "/api/docs")
    assert response is not None and response.status == 200
    csp = response.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    expect(session.page.get_by_text("Revoke the token this request is made with")).to_be_visible()
    session.page.get_by_text("Get a bearer token").click()  # opens the operation's details
    expect(session.page.get_by_role("button", name="Try it out")).to_be_visible()
    session.page.get_by_role("button", name="Try it out").click()
    expect(session.page.get_by_role("button", name="Execute")).to_be_visible()
