"""Where sign-in sends the browser: only ever a path on this node, whatever `next` holds,
and bad input in the sign-in form is a 4xx or a safe redirect, never a broken reply."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from node.web.auth_pages import HOME, safe_next
from tests.conftest import NodeHandle
from tests.web.conftest import BASE_URL, PASSWORD, Browser

# Each of these leaves the node once a browser has normalised it: browsers drop tab,
# CR and LF anywhere in a URL and leading C0 controls or spaces, and read a backslash
# as a slash in http(s) URLs.
ATTACKS = [
    "//evil.example/",
    "///evil.example/",
    "https://evil.example/",
    "http:evil.example",
    "https:/evil.example",
    "HTTPS://evil.example",
    "javascript:alert(1)",
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\t/evil.example/x",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "/\r\nSet-Cookie: stolen=1",
    "\t//evil.example",
    " //evil.example",
    "\x0b//evil.example",
    "/\x00/evil.example",
    "/\x7f/evil.example",
    "evil.example",
    "",
    "/" + "a" * 5000,
]

# Paths on this node, some of them unusual, that must keep working.
ON_SITE = {
    "/listings/new?kind=need": "/listings/new?kind=need",
    "/listings?category=tools#top": "/listings?category=tools#top",
    "/%09/evil.example/x": "/%09/evil.example/x",  # an escaped tab stays escaped: a path
    "/%2F%2Fevil.example": "/%2F%2Fevil.example",
    "/caf\u00e9 bar": "/caf%C3%A9%20bar",
    '/"><script>': "/%22%3E%3Cscript%3E",
}


@pytest.mark.parametrize("target", ATTACKS)
def test_next_that_would_leave_the_node_falls_back_home(target: str) -> None:
    assert safe_next(target) == HOME


@pytest.mark.parametrize(("target", "location"), ON_SITE.items())
def test_next_on_this_node_is_kept_in_a_form_browsers_read_alike(
    target: str, location: str
) -> None:
    assert safe_next(target) == location


@pytest.mark.parametrize("target", ATTACKS)
async def test_signing_in_never_redirects_off_site(browser: Browser, target: str) -> None:
    response = await browser.post(
        "/signin", {"username": "max", "password": PASSWORD, "next": target}
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == HOME


@pytest.mark.parametrize("target", ATTACKS)
async def test_a_signed_in_visit_to_signin_never_redirects_off_site(
    browser: Browser, target: str
) -> None:
    await browser.become("max")
    response = await browser.client.get(
        "/signin?next=" + quote(target, safe=""), allow_redirects=False
    )
    assert response.status == 303, await response.text()
    assert response.headers["Location"] == HOME


@pytest.mark.parametrize("raw_query", ["next=/%0d%0a/evil", "next=%ff%fe", "next=/%00"])
async def test_undecodable_or_control_characters_in_the_query_are_answered(
    browser: Browser, raw_query: str
) -> None:
    response = await browser.client.get("/signin?" + raw_query, allow_redirects=False)
    assert response.status == 200
    assert 'name="next" value="/listings"' in await response.text()


@pytest.mark.parametrize(
    "form",
    [
        {"username": "ma\r\nx", "password": PASSWORD},
        {"username": "ma\x00x", "password": PASSWORD},
        {"username": "max", "password": "pass\x00word"},
        {"username": "x" * 10_000, "password": PASSWORD},
        {"username": "max", "password": "p" * 100_000},
    ],
)
async def test_bad_characters_in_the_sign_in_form_are_a_clear_4xx(
    browser: Browser, form: dict[str, str]
) -> None:
    response = await browser.post("/signin", form)
    assert 400 <= response.status < 500
    assert "<h1>" in await response.text()


async def test_a_body_that_is_not_utf8_is_a_clear_4xx(browser: Browser) -> None:
    response = await browser.client.post(
        "/signin",
        data=b"username=\xff\xfe&password=\xc3",
        headers={"Origin": BASE_URL, "Content-Type": "application/x-www-form-urlencoded"},
        allow_redirects=False,
    )
    assert 400 <= response.status < 500


async def test_nul_in_the_sign_in_form_is_a_401_on_both_databases(node: NodeHandle) -> None:
    """PostgreSQL refuses NUL in text; the sign-in form must not pass it through."""
    await node.add_member("ada")
    for form in ({"username": "a\x00da", "password": PASSWORD}, {"username": "ada\x00"}):
        response = await node.client.post(
            "/signin", data=form, headers={"Origin": "http://tools.test"}, allow_redirects=False
        )
        assert response.status == 401, await response.text()
