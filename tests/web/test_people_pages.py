"""The people pages without a browser: invitations, joining, the member list, a member's
own page and password links, each refusing bad input with what was typed kept."""

from __future__ import annotations

import re

from node.appkeys import SESSIONS
from node.services.accounts import find_member
from storage.repositories import CommunityRepository
from tests.web.conftest import BASE_URL, PASSWORD, Browser

LINK = re.compile(r'value="(http://commons\.test/(?:join|reset)/[^"]+)"')


async def make_invitation(browser: Browser, role: str = "member") -> str:
    resp = await browser.submit(
        "/steward/invitations", {"role": role, "hours": "24"}, "/steward/invitations"
    )
    assert resp.status == 200, await resp.text()
    match = LINK.search(await resp.text())
    assert match
    return match.group(1).removeprefix(BASE_URL)


async def is_active(browser: Browser, username: str) -> bool:
    async with browser.client.app[SESSIONS]() as session:
        community = await CommunityRepository(session).get_local_by_slug("riverside")
        assert community is not None
        member = await find_member(session, community, username)
        assert member is not None
        return member.is_active


async def test_steward_invites_and_the_newcomer_joins_signed_in(browser: Browser) -> None:
    await browser.become("stella")
    join_path = await make_invitation(browser)
    listed = await (await browser.get("/steward/invitations")).text()
    assert "Not used yet" in listed and join_path.split("/")[-1] not in listed

    browser.client.session.cookie_jar.clear()
    form = await browser.get(join_path)
    assert form.status == 200 and "Join Riverside Tool Library" in await form.text()
    refused = await browser.post(
        join_path, {"username": "Nia K", "display_name": "Nia K.", "password": PASSWORD}
    )
    assert refused.status == 422
    text = await refused.text()
    assert 'value="Nia K"' in text and 'value="Nia K."' in text and PASSWORD not in text

    joined = await browser.post(
        join_path, {"username": "nia", "display_name": "Nia K.", "password": PASSWORD}
    )
    assert joined.status == 303 and joined.headers["Location"] == "/listings"
    assert "Nia K." in await (await browser.get("/account")).text()

    again = await browser.post(join_path, {"username": "nia2", "password": PASSWORD})
    assert again.status == 400
    await browser.become("stella")
    assert (
        "Used by <strong>nia</strong>" in await (await browser.get("/steward/invitations")).text()
    )


async def test_members_cannot_open_the_people_pages(browser: Browser) -> None:
    await browser.become("max")
    for path in ("/steward/members", "/steward/invitations"):
        assert (await browser.get(path)).status == 403


async def test_deactivating_signs_the_member_out_of_an_open_browser(
    browser: Browser, aiohttp_client: object
) -> None:
    await browser.become("max")
    assert (await browser.get("/account")).status == 200
    max_cookies = list(browser.client.session.cookie_jar)
    await browser.become("stella")
    resp = await browser.submit("/steward/members/max", {"active": "no"}, "/steward/members")
    assert resp.status == 303
    assert not await is_active(browser, "max")

    browser.client.session.cookie_jar.clear()
    browser.client.session.cookie_jar.update_cookies({m.key: m.value for m in max_cookies})
    assert (await browser.get("/account")).status == 303
    assert (await browser.sign_in("max")).status == 401


async def test_the_last_steward_is_refused_with_a_message(browser: Browser) -> None:
    await browser.become("stella")
    resp = await browser.submit("/steward/members/stella", {"role": "member"}, "/steward/members")
    assert resp.status == 409
    assert "at least one active steward" in await resp.text()


async def test_members_page_searches(browser: Browser) -> None:
    await browser.become("stella")
    text = await (await browser.get("/steward/members?q=olg")).text()
    assert "olga" in text and ">max<" not in text
    assert (await browser.get("/steward/members?cursor=junk")).status == 400


async def test_profile_and_password_forms_keep_what_was_typed(browser: Browser) -> None:
    await browser.become("max")
    long_name = "M" * 101
    refused = await browser.submit(
        "/account/profile", {"display_name": long_name, "bio": "Ladders"}, "/account"
    )
    assert refused.status == 422
    text = await refused.text()
    assert long_name in text and "Ladders" in text
    saved = await browser.submit(
        "/account/profile", {"display_name": "Max P.", "bio": "Ladders"}, "/account"
    )
    assert saved.status == 303
    wrong = await browser.submit(
        "/account/password",
        {"current": "nope nope", "new": "new password 1", "confirm": "new password 1"},
        "/account",
    )
    assert wrong.status == 403


async def test_a_password_link_from_the_members_page(browser: Browser) -> None:
    await browser.become("stella")
    resp = await browser.submit("/steward/members/max/reset", {}, "/steward/members")
    assert resp.status == 200
    match = LINK.search(await resp.text())
    assert match
    reset_path = match.group(1).removeprefix(BASE_URL)

    browser.client.session.cookie_jar.clear()
    assert (await browser.get(reset_path)).status == 200
    differ = await browser.post(reset_path, {"password": "first pass 1", "confirm": "other"})
    assert differ.status == 422
    done = await browser.post(
        reset_path, {"password": "fresh password", "confirm": "fresh password"}
    )
    assert done.status == 303
    assert (await browser.get(reset_path)).status == 400
    assert (await browser.sign_in("max", "fresh password")).status == 303
