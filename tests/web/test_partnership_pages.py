"""Stewards form, answer and dissolve partnerships through the web pages.

Remote communities are rows inserted directly (a cached actor and a partnership
in the state under test), except for proposing, which needs something to look
up: there a second node runs in this process on a loopback port, and a small
fake server plays a Mastodon account, i.e. an actor that is not a community.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from sqlalchemy import func, select

from federation.vocab import Activity
from node.app import init_app
from node.appkeys import SESSIONS
from node.config import default_database_url, write_config
from node.protocol.answers import on_answer
from node.protocol.context import FederationContext
from node.services.accounts import create_member
from node.services.communities import create_local_community
from storage.engine import create_engine, create_session_factory
from storage.migrate import upgrade_to_head_async
from storage.models import (
    Community,
    CommunityPartnership,
    Delivery,
    Job,
    Listing,
    Notification,
    RemoteListing,
    utcnow,
)
from storage.repositories import CommunityRepository
from tests.support.processes import free_port
from tests.web.conftest import PASSWORD, SLUG, Browser

ServerFactory = Callable[..., Awaitable[TestServer]]
FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
NAV_COUNT = re.compile(r'<span class="nav-count">(\d+)<span class="visually-hidden"> unread')


# ---------- rows standing in for other nodes ----------


async def add_remote(
    browser: Browser, slug: str = "hillside", name: str = "Hillside Commons"
) -> Community:
    """A cached remote community on a closed loopback port: anything sent there fails fast."""
    base = f"http://127.0.0.1:{free_port()}"
    async with browser.client.app[SESSIONS]() as db:
        community = Community(
            ap_id=f"{base}/c/{slug}",
            is_local=False,
            slug=slug,
            host=base.removeprefix("http://"),
            name=name,
            description="Seeds, tools and a repair café.",
            base_url=base,
            inbox_url=f"{base}/c/{slug}/inbox",
            shared_inbox_url=f"{base}/inbox",
            public_offer_count=4,
            public_need_count=2,
            fetched_at=utcnow(),
        )
        db.add(community)
        await db.commit()
        return community


async def add_partnership(
    browser: Browser, remote: Community, state: str, message: str = "Shall we share tools?"
) -> str:
    initiated_by = "us" if state == "proposed" else "them"
    async with browser.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug(SLUG)
        assert local is not None
        partnership = CommunityPartnership(
            local_community_id=local.id,
            remote_community_id=remote.id,
            state=state,
            initiated_by=initiated_by,
            follow_activity_id=f"{remote.ap_id}/activities/{uuid.uuid4().hex}",
            message=message,
        )
        db.add(partnership)
        await db.flush()
        if state == "pending":
            db.add(
                Notification(
                    community_id=local.id,
                    kind="partnership_proposed",
                    partnership_id=partnership.id,
                    text=f"{remote.name} ({remote.handle}) proposes a partnership",
                )
            )
        await db.commit()
        return partnership.id


async def add_remote_listing(browser: Browser, origin: Community, title: str, audience: str) -> str:
    async with browser.client.app[SESSIONS]() as db:
        listing = RemoteListing(
            ap_id=f"{origin.ap_id}/listings/{uuid.uuid4().hex}",
            origin_community_id=origin.id,
            audience=audience,
            kind="offer",
            title=title,
            description="Mirrored from elsewhere.",
            category="tools",
            published_at=utcnow(),
        )
        db.add(listing)
        await db.commit()
        return listing.id


async def state_of(browser: Browser, partnership_id: str) -> str:
    async with browser.client.app[SESSIONS]() as db:
        partnership = await db.get(CommunityPartnership, partnership_id)
        assert partnership is not None
        return partnership.state


async def delivery_count(browser: Browser) -> int:
    async with browser.client.app[SESSIONS]() as db:
        return int((await db.execute(select(func.count()).select_from(Delivery))).scalar_one())


async def partnership_count(browser: Browser) -> int:
    async with browser.client.app[SESSIONS]() as db:
        query = select(func.count()).select_from(CommunityPartnership)
        return int((await db.execute(query)).scalar_one())


async def html_of(browser: Browser, path: str, status: int = 200) -> str:
    response = await browser.get(path)
    text = await response.text()
    assert response.status == status, text
    return text


async def post_listing(browser: Browser, title: str, visibility: str) -> None:
    data = {"kind": "offer", "title": title, "description": "Local.", "category": "tools"}
    data["visibility"] = visibility
    response = await browser.submit("/listings/new", data, form_page="/listings/new")
    assert response.status == 303, await response.text()


def nav_count(html: str) -> int:
    match = NAV_COUNT.search(html)
    return int(match.group(1)) if match else 0


# ---------- the dashboard ----------


async def test_dashboard_is_for_stewards_only(browser: Browser) -> None:
    response = await browser.get("/steward")
    assert response.status == 303 and response.headers["Location"].startswith("/signin")
    await browser.become("max")
    html = await html_of(browser, "/steward", 403)
    assert "Only stewards can see this page" in html
    assert 'href="/steward"' not in await html_of(browser, "/listings")
    response = await browser.submit("/steward/notifications/read", {})
    assert response.status == 403


async def test_pending_proposal_shows_as_a_count_on_every_page_for_stewards(
    browser: Browser,
) -> None:
    remote = await add_remote(browser)
    partnership_id = await add_partnership(browser, remote, "pending")
    await browser.become("stella")
    for path in ("/listings", "/listings/new?kind=offer", "/steward", "/communities/riverside"):
        assert nav_count(await html_of(browser, path)) == 1, path
    html = await html_of(browser, "/steward")
    waiting = html.split('id="awaiting-us"')[1].split("</section>")[0]
    assert "Hillside Commons" in waiting and "Shall we share tools?" in waiting
    assert f'href="/steward/partnerships/{partnership_id}/approve">Approve…' in waiting
    assert f'href="/steward/partnerships/{partnership_id}/reject">Reject…' in waiting
    assert "Hillside Commons (hillside@" in html.split('id="notifications"')[1]

    await browser.become("max")
    assert nav_count(await html_of(browser, "/listings")) == 0


async def test_marking_notifications_read_clears_the_count(browser: Browser) -> None:
    await add_partnership(browser, await add_remote(browser), "pending")
    await browser.become("stella")
    response = await browser.submit("/steward/notifications/read", {}, form_page="/steward")
    assert response.status == 303
    assert nav_count(await html_of(browser, "/steward")) == 0


async def test_dashboard_groups_partnerships_by_what_a_steward_can_do(browser: Browser) -> None:
    ids = {
        state: await add_partnership(
            browser, await add_remote(browser, state, f"{state} place"), state
        )
        for state in ("active", "proposed", "rejected", "dissolved")
    }
    await browser.become("stella")
    html = await html_of(browser, "/steward")
    sections = {
        name: html.split(f'id="{name}"')[1].split("</section>")[0]
        for name in ("active", "awaiting-them")
    }
    assert "active place" in sections["active"]
    assert f'/steward/partnerships/{ids["active"]}/dissolve">Dissolve…' in sections["active"]
    assert "proposed place" in sections["awaiting-them"]
    assert (
        f'/steward/partnerships/{ids["proposed"]}/dissolve">Withdraw…' in sections["awaiting-them"]
    )
    history = html.split('id="history"')[1].split("</details>")[0]
    assert "rejected place" in history and "dissolved place" in history


async def test_a_proposal_undone_by_its_proposer_stops_counting(browser: Browser) -> None:
    remote = await add_remote(browser)
    partnership_id = await add_partnership(browser, remote, "pending")
    async with browser.client.app[SESSIONS]() as db:
        partnership = await db.get(CommunityPartnership, partnership_id)
        assert partnership is not None
        follow = {"id": partnership.follow_activity_id, "type": "Follow", "actor": remote.ap_id}
    undo = Activity(
        id=f"{remote.ap_id}/activities/undo",
        type="Undo",
        actor=remote.ap_id,
        object=follow,
        to=(),
        cc=(),
        published=None,
        partnership=True,
        raw={},
    )
    await on_answer(FederationContext.from_app(browser.client.app), undo)
    await browser.become("stella")
    html = await html_of(browser, "/steward")
    assert nav_count(html) == 0
    assert "Hillside Commons" in html.split('id="history"')[1]


# ---------- answering ----------


async def test_approve_page_says_what_partners_will_see_then_approves(browser: Browser) -> None:
    await browser.become("stella")
    await post_listing(browser, "Bench saw", "partners")
    await post_listing(browser, "Canoe", "partners")
    await post_listing(browser, "Ladder", "public")
    await post_listing(browser, "Spare keys", "community")
    partnership_id = await add_partnership(browser, await add_remote(browser), "pending")
    deliveries = await delivery_count(browser)

    path = f"/steward/partnerships/{partnership_id}/approve"
    html = await html_of(browser, path)
    assert "2 listings are shared with partners." in html
    assert "1 public listing</strong> is visible to everyone on the network anyway." in html
    assert "Shall we share tools?" in html

    response = await browser.submit(path, {}, form_page=path)
    assert response.status == 303 and response.headers["Location"] == "/steward#active"
    assert await state_of(browser, partnership_id) == "active"
    assert await delivery_count(browser) > deliveries, "an Accept is queued for the proposer"
    html = await html_of(browser, "/steward")
    assert "You are now partners with Hillside Commons." in html
    assert nav_count(html) == 0
    assert "Hillside Commons" in html.split('id="active"')[1].split("</section>")[0]


async def test_reject_asks_first_then_rejects(browser: Browser) -> None:
    partnership_id = await add_partnership(browser, await add_remote(browser), "pending")
    await browser.become("stella")
    path = f"/steward/partnerships/{partnership_id}/reject"
    html = await html_of(browser, path)
    assert "Reject the proposal from Hillside Commons?" in html
    assert await state_of(browser, partnership_id) == "pending", "opening the page changes nothing"
    response = await browser.submit(path, {}, form_page=path)
    assert response.status == 303
    assert await state_of(browser, partnership_id) == "rejected"
    assert nav_count(await html_of(browser, "/steward")) == 0


@pytest.mark.parametrize("action", ["approve", "reject"])
@pytest.mark.parametrize("token", ["", "forged-token"])
async def test_a_form_with_a_bad_csrf_token_changes_nothing(
    browser: Browser, action: str, token: str
) -> None:
    partnership_id = await add_partnership(browser, await add_remote(browser), "pending")
    await browser.become("stella")
    deliveries = await delivery_count(browser)
    path = f"/steward/partnerships/{partnership_id}/{action}"
    response = await browser.post(path, {"csrf_token": token} if token else {})
    assert response.status == 403
    assert "That form could not be accepted" in await response.text()
    assert await state_of(browser, partnership_id) == "pending"
    assert await delivery_count(browser) == deliveries
    assert nav_count(await html_of(browser, "/steward")) == 1


async def test_a_member_cannot_answer_with_a_valid_token(browser: Browser) -> None:
    partnership_id = await add_partnership(browser, await add_remote(browser), "pending")
    await browser.become("max")
    response = await browser.submit(f"/steward/partnerships/{partnership_id}/approve", {})
    assert response.status == 403
    assert await state_of(browser, partnership_id) == "pending"


async def test_answering_twice_is_a_conflict_page_not_a_crash(browser: Browser) -> None:
    partnership_id = await add_partnership(browser, await add_remote(browser), "active")
    await browser.become("stella")
    await html_of(browser, f"/steward/partnerships/{partnership_id}/approve", 409)
    response = await browser.submit(f"/steward/partnerships/{partnership_id}/reject", {})
    assert response.status == 409
    assert await state_of(browser, partnership_id) == "active"
    await html_of(browser, f"/steward/partnerships/{uuid.uuid4().hex}/dissolve", 404)


async def test_dissolving_ends_sharing_and_removes_partner_listings(browser: Browser) -> None:
    remote = await add_remote(browser)
    partnership_id = await add_partnership(browser, remote, "active")
    await add_remote_listing(browser, remote, "Their cargo bike", "partners")
    await browser.become("max")
    html = await html_of(browser, "/network?origin=partner")
    assert "Their cargo bike" in html

    await browser.become("stella")
    path = f"/steward/partnerships/{partnership_id}/dissolve"
    assert "End the partnership with Hillside Commons?" in await html_of(browser, path)
    response = await browser.submit(path, {}, form_page=path)
    assert response.status == 303
    assert await state_of(browser, partnership_id) == "dissolved"
    assert "Their cargo bike" not in await html_of(browser, "/network")


async def test_withdrawing_our_proposal(browser: Browser) -> None:
    partnership_id = await add_partnership(browser, await add_remote(browser), "proposed")
    await browser.become("stella")
    path = f"/steward/partnerships/{partnership_id}/dissolve"
    assert "Withdraw your proposal to Hillside Commons?" in await html_of(browser, path)
    response = await browser.submit(path, {}, form_page=path)
    assert response.status == 303
    assert await state_of(browser, partnership_id) == "dissolved"


# ---------- listings from elsewhere ----------


async def test_partner_listings_are_marked_and_link_to_their_detail_page(browser: Browser) -> None:
    partner = await add_remote(browser)
    await add_partnership(browser, partner, "active")
    stranger = await add_remote(browser, "faraway", "Faraway Guild")
    partner_listing = await add_remote_listing(browser, partner, "Their cargo bike", "partners")
    public_listing = await add_remote_listing(browser, stranger, "Their public piano", "public")
    await browser.become("max")
    await post_listing(browser, "Our own drill", "community")

    own = await html_of(browser, "/listings")
    assert "Our own drill" in own and "Their cargo bike" not in own
    assert (
        '<a class="scope-switch__option" href="/listings" aria-current="page">Our community' in own
    )

    partners_only = await html_of(browser, "/network?origin=partner")
    assert "Their cargo bike" in partners_only
    assert "Our own drill" not in partners_only and "Their public piano" not in partners_only
    card = partners_only.split("Their cargo bike")[1].split("</article>")[0]
    assert "From a partner" in card and "Hillside Commons" in card
    before = partners_only.split("Their cargo bike")[0].rsplit("<article", 1)[1]
    assert "listing-card--from-partner" in before
    assert "Who can see it: </span>Partner communities" in before
    assert f'<a href="/listings/{partner_listing}">Their cargo bike</a>' in partners_only

    everything = await html_of(browser, "/network?kind=offer")
    assert "Their public piano" in everything and "Their cargo bike" in everything
    assert "Our own drill" in everything
    piano = everything.split("Their public piano")[1].split("</article>")[0]
    assert "From the public network" in piano
    assert f'href="/listings/{public_listing}"' in everything


# ---------- the public community page ----------


async def test_public_community_page_never_shows_community_or_partner_listings(
    browser: Browser,
) -> None:
    remote = await add_remote(browser)
    await add_partnership(browser, remote, "active")
    await add_remote_listing(browser, remote, "Partner canoe", "partners")
    await add_remote_listing(browser, remote, "Remote public piano", "public")
    await browser.become("max")
    await post_listing(browser, "Members-only ladder", "community")
    await post_listing(browser, "Partners-only trailer", "partners")
    await post_listing(browser, "Everyone's seed swap", "public")

    for who in (None, "max"):
        browser.client.session.cookie_jar.clear()
        if who:
            await browser.become(who)
        html = await html_of(browser, f"/communities/{SLUG}")
        assert "Everyone&#39;s seed swap" in html
        for hidden in (
            "Members-only ladder",
            "Partners-only trailer",
            "Partner canoe",
            "Remote public piano",
        ):
            assert hidden not in html, (who, hidden)
        assert re.search(r"<dt>Public offers</dt><dd>1</dd>", html)
        assert "riverside@commons.test" in html
    async with browser.client.app[SESSIONS]() as db:
        public = (await db.execute(select(Listing).where(Listing.is_public))).scalar_one()
    assert f'id="listing-{public.id}"' in html


async def test_actor_url_in_a_browser_leads_to_the_public_page(browser: Browser) -> None:
    response = await browser.client.get(
        f"/c/{SLUG}", headers={"Accept": "text/html,application/xhtml+xml"}
    )
    assert response.status == 200
    assert str(response.url).endswith(f"/communities/{SLUG}")
    assert await html_of(browser, "/communities/nobody", 404)


# ---------- proposing, against a real second node ----------


async def start_other_node(tmp_path: Path, server: ServerFactory) -> tuple[str, web.Application]:
    """Hillside, a second node in this process, on a loopback port of its own."""
    port, folder = free_port(), tmp_path / "hillside"
    folder.mkdir()
    config = write_config(
        folder,
        base_url=f"http://127.0.0.1:{port}",
        slug="hillside",
        name="Hillside Commons",
        database_url=default_database_url(folder),
        allow_private_addresses=True,
    )
    await upgrade_to_head_async(config.database_url)
    engine = create_engine(config.database_url)
    async with create_session_factory(engine)() as db:
        community = await create_local_community(
            db, config, slug="hillside", name="Hillside Commons", description="Seeds and tools."
        )
        steward = await create_member(db, community, "hana", PASSWORD, "steward")
        for title in ("Apple press", "Seed library"):
            db.add(
                Listing(
                    ap_id=f"{community.ap_id}/listings/{uuid.uuid4().hex}",
                    community_id=community.id,
                    author_id=steward.id,
                    kind="offer",
                    title=title,
                    visibility="public",
                    is_public=True,
                )
            )
        await db.commit()
    await engine.dispose()
    app = init_app(config)
    await server(app, port=port)
    return f"hillside@127.0.0.1:{port}", app


async def fake_mastodon(server: ServerFactory) -> str:
    """A Person actor, to check that only communities can be partners."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    document = json.loads(
        (FIXTURES / "actor.json").read_text().replace("https://mastodon.example", base)
    )

    async def actor(_request: web.Request) -> web.Response:
        return web.json_response(document, content_type="application/activity+json")

    app = web.Application()
    app.router.add_get("/users/alice", actor)
    await server(app, port=port)
    return str(document["id"])


def form_error(html: str) -> str:
    match = re.search(r'id="target-error" role="alert">.*?<p>(.*?)</p>', html, re.S)
    assert match, "no error on the form"
    return match.group(1)


async def test_propose_previews_the_community_then_sends(
    browser: Browser, tmp_path: Path, aiohttp_server: ServerFactory
) -> None:
    handle, _hillside = await start_other_node(tmp_path, aiohttp_server)
    await browser.become("stella")
    form = "/steward/partnerships/new"
    assert "Community handle or address" in await html_of(browser, form)

    response = await browser.submit("/steward/partnerships/preview", {"target": handle}, form)
    html = await response.text()
    assert response.status == 200, html
    assert "Propose a partnership to Hillside Commons?" in html
    assert "Seeds and tools." in html
    assert re.search(r"<dt>Public offers</dt><dd>2</dd>", html)
    assert await partnership_count(browser) == 0, "a preview sends nothing"
    target = re.search(r'name="target" value="([^"]+)"', html)
    assert target and target.group(1).endswith("/c/hillside")

    response = await browser.submit(
        "/steward/partnerships/propose",
        {"target": target.group(1), "message": "Hello from Riverside"},
        form,
    )
    assert response.status == 303, await response.text()
    html = await html_of(browser, "/steward")
    assert "Proposal sent to Hillside Commons." in html
    waiting = html.split('id="awaiting-them"')[1].split("</section>")[0]
    assert "Hillside Commons" in waiting and "Hello from Riverside" in waiting

    response = await browser.submit("/steward/partnerships/preview", {"target": handle}, form)
    assert response.status == 422
    assert "already has a partnership or a proposal" in form_error(await response.text())
    response = await browser.submit("/steward/partnerships/propose", {"target": handle}, form)
    assert response.status == 422
    assert await partnership_count(browser) == 1


async def test_propose_shows_lookup_problems_on_the_form(
    browser: Browser, aiohttp_server: ServerFactory
) -> None:
    person = await fake_mastodon(aiohttp_server)
    await browser.become("stella")
    form = "/steward/partnerships/new"
    cases: dict[str, str] = {
        "": "Enter the community&#39;s handle",
        "not a handle": "Enter the community&#39;s handle",
        f"nobody@127.0.0.1:{free_port()}": "could not be reached",
        "https://": "could not be reached",
        person: "not a community you can partner with",
        "http://commons.test/c/riverside": "not a community you can partner with",
    }
    for target, expected in cases.items():
        for step in ("preview", "propose"):
            response = await browser.submit(
                f"/steward/partnerships/{step}", {"target": target}, form
            )
            html = await response.text()
            assert response.status == 422, (target, step, html)
            assert expected in form_error(html), (target, step)
            assert f'value="{target}"' in html or not target
    assert await partnership_count(browser) == 0
    assert await delivery_count(browser) == 0


async def test_member_cannot_open_the_proposal_form(browser: Browser) -> None:
    await browser.become("max")
    await html_of(browser, "/steward/partnerships/new", 403)
    response = await browser.submit("/steward/partnerships/propose", {"target": "x@example.org"})
    assert response.status == 403


async def test_dashboard_shows_background_work_its_progress_and_its_failures(
    browser: Browser,
) -> None:
    slow = await add_remote(browser, "slowtown", "Slowtown Library")
    gone = await add_remote(browser, "goneville", "Goneville Pantry")
    async with browser.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug(SLUG)
        assert local is not None
        now = utcnow()
        db.add_all(
            [
                Job(
                    kind="backfill",
                    community_id=local.id,
                    subject=slow.ap_id,
                    locked_until=now + timedelta(minutes=1),
                    progress=json.dumps({"current": {"pages": 3, "kept": 140, "stopped_by": None}}),
                ),
                Job(
                    kind="backfill",
                    community_id=local.id,
                    subject=gone.ap_id,
                    state="failed",
                    attempts=8,
                    last_error="gave up after 8 attempts: connection refused",
                ),
            ]
        )
        await db.commit()
    await browser.become("stella")
    html = await html_of(browser, "/steward")
    work = html.split('id="background-work"')[1].split("</section>")[0]
    running, failed = work.split('<li class="card job')[1:]
    assert "from Slowtown Library" in running and "Running" in running
    assert "140 listings from 3 pages" in running
    assert "from Goneville Pantry" in failed and "Failed" in failed
    assert "gave up after 8 attempts: connection refused" in failed


async def test_a_steward_reads_the_communitys_notifications_beside_their_own(
    browser: Browser,
) -> None:
    await add_partnership(browser, await add_remote(browser), "pending")
    await browser.become("stella")
    html = await html_of(browser, "/notifications")
    section = html.split('id="community-notifications-heading"')[1].split("</section>")[0]
    assert "Hillside Commons (hillside@" in section and "New: " in section
    assert 'href="/steward#partnerships-heading"' in section
    response = await browser.submit("/notifications/read", {}, form_page="/notifications")
    assert response.status == 303
    assert nav_count(await html_of(browser, "/steward")) == 0, "the community's are read too"
    assert "New: " not in (await html_of(browser, "/notifications")).split("</h1>")[1]

    await browser.become("max")
    assert "community-notifications-heading" not in await html_of(browser, "/notifications")
