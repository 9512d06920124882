"""Asking for a listing, answering, talking and completing, through the pages alone.

Both members are in the same community here (one node, nothing sent); the
browser tests run the same forms across two real nodes.
"""

from __future__ import annotations

import re

from sqlalchemy import select

from node.appkeys import SESSIONS
from storage.models import Exchange
from tests.web.conftest import Browser
from tests.web.test_listing_pages import posted_id
from tests.web.test_partnership_pages import add_remote, add_remote_listing, html_of


async def exchanges_in_db(browser: Browser) -> list[Exchange]:
    async with browser.client.app[SESSIONS]() as db:
        return list((await db.scalars(select(Exchange))).all())


def card(html: str, exchange_id: str) -> str:
    start = html.index(f'id="exchange-{exchange_id}"')
    return html[start : html.index("</article>", start)]


def buttons(html: str) -> list[str]:
    return re.findall(r'<button type="submit" class="button [^"]+">([^<]+)</button>', html)


async def request(browser: Browser, listing_id: str, **fields: str) -> str:
    form = {"note": "Could I borrow it on Saturday?", "hours": "2", **fields}
    response = await browser.submit(
        f"/listings/{listing_id}/request", form, form_page=f"/listings/{listing_id}"
    )
    assert response.status == 303, await response.text()
    location = response.headers["Location"]
    match = re.fullmatch(r"/exchanges#exchange-([0-9a-f]{32})", location)
    assert match, location
    return match.group(1)


async def test_own_listing_offers_no_request_form(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    html = await html_of(browser, f"/listings/{listing_id}")
    assert f'action="/listings/{listing_id}/request"' not in html
    await browser.become("olga")
    html = await html_of(browser, f"/listings/{listing_id}")
    assert f'action="/listings/{listing_id}/request"' in html
    assert '<h2 id="request-heading" class="request-box__title">Request this</h2>' in html


async def test_a_need_is_answered_with_an_offer_of_help(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser, kind="need", title="Help moving a sofa")
    await browser.become("olga")
    html = await html_of(browser, f"/listings/{listing_id}")
    assert '<button type="submit" class="button button--primary">Offer help</button>' in html
    exchange_id = await request(browser, listing_id)
    [row] = await exchanges_in_db(browser)
    assert row.id == exchange_id and row.provider_handle.startswith("olga@")


async def test_request_accept_message_complete_through_the_pages(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    await browser.become("olga")
    exchange_id = await request(browser, listing_id)

    mine = card(await html_of(browser, "/exchanges"), exchange_id)
    assert "Waiting for an answer" in mine and "Inside our community" in mine
    assert "You receive from <strong>max</strong> of" in mine
    assert "Could I borrow it on Saturday?" in mine and "2 hours" in mine
    assert buttons(mine) == ["Send", "Cancel exchange"]

    await browser.become("max")
    theirs = card(await html_of(browser, "/exchanges"), exchange_id)
    assert buttons(theirs) == ["Send", "Accept", "Decline", "Cancel exchange"]
    response = await browser.submit(f"/exchanges/{exchange_id}/accept", {}, form_page="/exchanges")
    assert response.status == 303
    response = await browser.submit(
        f"/exchanges/{exchange_id}/messages", {"text": "Saturday at ten works."}, "/exchanges"
    )
    assert response.status == 303

    await browser.become("olga")
    mine = card(await html_of(browser, "/exchanges"), exchange_id)
    assert "Accepted" in mine and "Saturday at ten works." in mine
    assert buttons(mine) == ["Send", "Mark as completed", "Cancel exchange"]
    await browser.submit(f"/exchanges/{exchange_id}/complete", {}, form_page="/exchanges")
    mine = card(await html_of(browser, "/exchanges"), exchange_id)
    assert "Completed" in mine and buttons(mine) == ["Send"]
    [row] = await exchanges_in_db(browser)
    assert row.status == "completed"


async def test_an_action_not_open_to_the_member_is_refused_and_changes_nothing(
    browser: Browser,
) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    await browser.become("olga")
    exchange_id = await request(browser, listing_id)
    response = await browser.submit(f"/exchanges/{exchange_id}/accept", {}, "/exchanges")
    assert response.status == 403
    response = await browser.submit(f"/exchanges/{exchange_id}/complete", {}, "/exchanges")
    assert response.status == 409
    [row] = await exchanges_in_db(browser)
    assert row.status == "requested"


async def test_bad_amounts_are_refused_and_create_nothing(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    await browser.become("olga")
    for fields in ({"hours": "lots"}, {"hours": "nan"}, {"quantity": "1.5"}, {"hours": "-1"}):
        form = {"note": "", **fields}
        response = await browser.submit(
            f"/listings/{listing_id}/request", form, form_page=f"/listings/{listing_id}"
        )
        assert response.status in (400, 422), fields
    assert await exchanges_in_db(browser) == []


async def test_a_refused_request_is_shown_on_the_listing_with_what_was_typed(
    browser: Browser,
) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    await browser.become("olga")
    form = {"note": "Could I borrow it <soon>?", "hours": "lots", "quantity": "2"}
    response = await browser.submit(
        f"/listings/{listing_id}/request", form, form_page=f"/listings/{listing_id}"
    )
    html = await response.text()
    assert response.status == 400
    assert "<h1>Cordless drill</h1>" in html  # the listing's own page, not an error page
    assert "Hours must be a number, like 1.5. Nothing was sent." in html
    assert "Could I borrow it &lt;soon&gt;?</textarea>" in html
    assert 'value="lots"' in html and 'value="2"' in html
    assert 'aria-describedby="request-error"' in html
    assert await exchanges_in_db(browser) == []

    await browser.become("max")
    await browser.submit(f"/listings/{listing_id}/close", {})
    await browser.become("olga")
    response = await browser.submit(
        f"/listings/{listing_id}/request", {"note": "Still?"}, form_page="/listings"
    )
    assert response.status == 409
    assert "This listing is closed. Nothing was sent." in await response.text()


async def test_a_request_for_a_listing_the_member_may_not_see_is_not_found(
    browser: Browser,
) -> None:
    other = await add_remote(browser)
    listing_id = await add_remote_listing(browser, other, "Their cargo bike", "partners")
    await browser.become("olga")
    response = await browser.submit(f"/listings/{listing_id}/request", {"note": "Please"})
    assert response.status == 404
    assert await exchanges_in_db(browser) == []


async def test_my_exchanges_without_any(browser: Browser) -> None:
    await browser.become("olga")
    html = await html_of(browser, "/exchanges")
    assert "No exchanges yet" in html
    assert '<a href="/exchanges" aria-current="page">My exchanges</a>' in html


def unread_badge(html: str) -> str | None:
    """The unread count the header shows beside Notifications, if any."""
    match = re.search(
        r'<a href="/notifications"[^>]*>(?:<svg.*?</svg><span[^>]*>)?Notifications(?:</span>)? '
        r'<span class="nav-count">(\d+)<',
        html,
        re.S,
    )
    return match.group(1) if match else None


async def test_a_member_sees_and_clears_its_own_notifications(browser: Browser) -> None:
    await browser.become("max")
    listing_id = await posted_id(browser)
    assert unread_badge(await html_of(browser, "/listings")) is None
    await browser.become("olga")
    exchange_id = await request(browser, listing_id)
    html = await html_of(browser, "/notifications")
    assert unread_badge(html) is None and "Nothing yet" in html

    await browser.become("max")
    html = await html_of(browser, "/notifications")
    assert unread_badge(html) == "1"
    assert '<li class="notification is-unread">' in html
    assert "olga asks for “Cordless drill”" in html
    assert f'href="/exchanges#exchange-{exchange_id}"' in html
    response = await browser.submit("/notifications/read", {}, form_page="/notifications")
    assert (response.status, response.headers["Location"]) == (303, "/notifications")
    html = await html_of(browser, "/notifications")
    assert unread_badge(html) is None and "is-unread" not in html
    assert "Mark all as read" not in html

    # An answer reaches olga; opening her exchanges reads it.
    await browser.submit(f"/exchanges/{exchange_id}/accept", {}, form_page="/exchanges")
    await browser.become("olga")
    assert unread_badge(await html_of(browser, "/listings")) == "1"
    await html_of(browser, "/exchanges")
    html = await html_of(browser, "/notifications")
    assert unread_badge(html) is None and "was accepted" in html
