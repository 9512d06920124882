"""Signing in and out through the web pages."""

from __future__ import annotations

from pathlib import Path

from node.app import init_app
from node.services.login_throttle import PAIR_BACKOFF
from node.web.flash import FLASH_COOKIE
from node.web.sessions import SESSION_COOKIE
from tests.web.conftest import BASE_URL, Browser, ClientFactory, build_node, session_count


async def test_home_sends_a_visitor_to_sign_in(browser: Browser) -> None:
    response = await browser.get("/")
    assert response.status == 303
    assert response.headers["Location"] == "/signin"


async def test_home_sends_a_signed_in_member_to_the_listings(browser: Browser) -> None:
    await browser.become("max")
    response = await browser.get("/")
    assert response.headers["Location"] == "/listings"


async def test_sign_in_page_names_the_community(browser: Browser) -> None:
    response = await browser.get("/signin")
    html = await response.text()
    assert response.status == 200
    assert "Sign in to Riverside Tool Library" in html
    assert '<label for="username">Username</label>' in html
    assert '<label for="password">Password</label>' in html


async def test_sign_in_sets_an_httponly_lax_session_cookie(browser: Browser) -> None:
    response = await browser.sign_in("stella")
    assert response.status == 303
    assert response.headers["Location"] == "/listings"
    cookie = response.cookies[SESSION_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert not cookie["secure"]
    page = await browser.get("/listings")
    html = await page.text()
    assert page.status == 200
    assert "Welcome, stella." in html
    assert "<strong>stella</strong>" in html


async def test_session_cookie_is_secure_when_the_node_uses_https(
    aiohttp_client: ClientFactory, tmp_path: Path
) -> None:
    config = await build_node(tmp_path, base_url="https://commons.test")
    client = await aiohttp_client(init_app(config))
    response = await client.post(
        "/signin",
        data={"username": "stella", "password": "correct horse battery"},
        headers={"Origin": "https://commons.test"},
        allow_redirects=False,
    )
    assert response.status == 303
    assert response.cookies[SESSION_COOKIE]["secure"] is True


async def test_wrong_password_explains_and_keeps_the_username(browser: Browser) -> None:
    response = await browser.sign_in("stella", "not my password")
    html = await response.text()
    assert response.status == 401
    assert "That username and password do not match" in html
    assert 'value="stella"' in html
    assert SESSION_COOKIE not in response.cookies
    assert await session_count(browser) == 0


async def test_unknown_user_gets_the_same_answer_as_a_wrong_password(browser: Browser) -> None:
    response = await browser.sign_in("nobody")
    assert response.status == 401
    assert "That username and password do not match" in await response.text()


async def test_sign_in_posted_from_another_site_is_refused(browser: Browser) -> None:
    response = await browser.client.post(
        "/signin",
        data={"username": "stella", "password": "correct horse battery"},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert "sent from another site" in await response.text()
    assert SESSION_COOKIE not in response.cookies
    assert await session_count(browser) == 0


async def test_sign_in_without_origin_or_referer_is_refused(browser: Browser) -> None:
    response = await browser.client.post(
        "/signin",
        data={"username": "stella", "password": "correct horse battery"},
        allow_redirects=False,
    )
    assert response.status == 403
    assert await session_count(browser) == 0


async def test_sign_in_with_a_same_site_referer_is_accepted(browser: Browser) -> None:
    response = await browser.client.post(
        "/signin",
        data={"username": "stella", "password": "correct horse battery"},
        headers={"Referer": f"{BASE_URL}/signin"},
        allow_redirects=False,
    )
    assert response.status == 303


async def test_sign_in_returns_to_the_page_that_asked_for_it(browser: Browser) -> None:
    first = await browser.get("/listings/new?kind=need")
    assert first.headers["Location"] == "/signin?next=%2Flistings%2Fnew%3Fkind%3Dneed"
    form = await (await browser.get(first.headers["Location"])).text()
    assert 'name="next" value="/listings/new?kind=need"' in form
    response = await browser.post(
        "/signin",
        {"username": "max", "password": "correct horse battery", "next": "/listings/new?kind=need"},
    )
    assert response.headers["Location"] == "/listings/new?kind=need"


async def test_sign_in_never_redirects_to_another_site(browser: Browser) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example"):
        browser.client.session.cookie_jar.clear()
        response = await browser.post(
            "/signin", {"username": "max", "password": "correct horse battery", "next": target}
        )
        assert response.headers["Location"] == "/listings", target


async def test_sign_out_ends_the_session_everywhere(browser: Browser) -> None:
    await browser.become("max")
    stolen_cookie = browser.cookie(SESSION_COOKIE)
    assert stolen_cookie and await session_count(browser) == 1

    response = await browser.submit("/signout", {})
    assert response.status == 303
    assert response.headers["Location"] == "/signin"
    assert response.cookies[SESSION_COOKIE].value == ""
    assert await session_count(browser) == 0
    signin = await (await browser.get("/signin")).text()
    assert "You have signed out." in signin

    browser.client.session.cookie_jar.update_cookies({SESSION_COOKIE: stolen_cookie})
    again = await browser.get("/listings")
    assert again.status == 303
    assert again.headers["Location"].startswith("/signin")


async def test_sign_out_without_the_csrf_token_is_refused(browser: Browser) -> None:
    await browser.become("max")
    response = await browser.post("/signout", {})
    assert response.status == 403
    assert "nothing was changed" in await response.text()
    assert await session_count(browser) == 1
    assert (await browser.get("/listings")).status == 200


async def test_a_new_sign_in_replaces_the_previous_session(browser: Browser) -> None:
    await browser.become("max")
    await browser.sign_in("max")
    assert await session_count(browser) == 1


async def test_flash_message_is_shown_once(browser: Browser) -> None:
    await browser.become("max")
    first = await (await browser.get("/listings")).text()
    second = await (await browser.get("/listings")).text()
    assert "Welcome, max." in first
    assert "Welcome, max." not in second


async def test_forged_flash_cookie_is_ignored(browser: Browser) -> None:
    await browser.become("max")
    browser.client.session.cookie_jar.update_cookies(
        {FLASH_COOKIE: "WyJlcnJvciIsIllvdXIgYWNjb3VudCBpcyBsb2NrZWQiXQ.forged"}
    )
    html = await (await browser.get("/listings")).text()
    assert "Your account is locked" not in html


async def test_repeated_wrong_passwords_pause_sign_in(browser: Browser) -> None:
    for _ in range(PAIR_BACKOFF.free):
        assert (await browser.sign_in("stella", "not my password")).status == 401
    response = await browser.sign_in("stella")
    assert response.status == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many attempts" in await response.text()
    assert SESSION_COOKIE not in response.cookies
    assert await session_count(browser) == 0
