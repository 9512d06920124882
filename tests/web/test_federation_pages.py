"""The federation page without a browser, on SQLite and PostgreSQL: what a steward
sees of each peer host, "retry now", domain blocks with a reason, and the
background work, paged. Retrying and blocking are the node operator's."""

from __future__ import annotations

import re
from datetime import timedelta

from aiohttp import ClientResponse
from sqlalchemy import select

from node.appkeys import SESSIONS
from storage.models import BlockedDomain, Delivery, PeerHost, utcnow
from storage.repositories import CommunityRepository, DeliveryRepository
from storage.repositories.jobs import JobRepository
from tests.conftest import PASSWORD, NodeHandle

ORIGIN = "http://tools.test"
PEER = "birch.example"
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


class Steward:
    """One signed-in browser on the node: cookies, Origin and the page's CSRF token."""

    def __init__(self, node: NodeHandle) -> None:
        self.client = node.client

    async def sign_in(self, username: str) -> None:
        self.client.session.cookie_jar.clear()
        response = await self.post("/signin", {"username": username, "password": PASSWORD})
        assert response.status == 303, await response.text()

    async def get(self, path: str) -> ClientResponse:
        return await self.client.get(path, allow_redirects=False)

    async def post(self, path: str, data: dict[str, str]) -> ClientResponse:
        return await self.client.post(
            path, data=data, headers={"Origin": ORIGIN}, allow_redirects=False
        )

    async def submit(self, path: str, data: dict[str, str]) -> ClientResponse:
        html = await (await self.get("/steward/federation")).text()
        match = CSRF_INPUT.search(html)
        assert match, "no CSRF field on the federation page"
        return await self.post(path, {"csrf_token": match.group(1), **data})

    async def page(self) -> str:
        response = await self.get("/steward/federation")
        assert response.status == 200, await response.text()
        return await response.text()


async def as_person(node: NodeHandle, username: str, role: str, operator: bool = False) -> Steward:
    await node.add_member(username, role, operator=operator)
    person = Steward(node)
    await person.sign_in(username)
    return person


async def failing_peer(node: NodeHandle) -> None:
    """One delivery queued for PEER, whose host failed once and is backed off for an
    hour; its last signed request said its clock was 42 s ahead of ours."""
    async with node.client.app[SESSIONS]() as session:
        community = await CommunityRepository(session).get_local_by_slug("tools")
        assert community is not None
        deliveries = DeliveryRepository(session)
        await deliveries.enqueue(
            "http://tools.test/activities/1", community.id, [f"https://{PEER}/inbox"], "{}"
        )
        now = utcnow()
        await deliveries.record_host_failure(
            PEER, now, "could not connect (connection refused)", lambda _: timedelta(hours=1)
        )
        await deliveries.record_clock_skew(PEER, 42.4, now)
        await session.commit()


async def queued_for_peer(node: NodeHandle) -> tuple[Delivery, PeerHost]:
    async with node.client.app[SESSIONS]() as session:
        delivery = (await session.scalars(select(Delivery))).one()
        peer = await session.get(PeerHost, PEER)
        assert peer is not None
        return delivery, peer


async def test_the_page_shows_a_failing_peer_and_retry_now_makes_it_due(node: NodeHandle) -> None:
    await failing_peer(node)
    operator = await as_person(node, "olive", "steward", operator=True)

    html = await operator.page()
    assert PEER in html and "Backing off" in html
    assert "could not connect (connection refused)" in html
    assert "42 s ahead of ours" in html
    assert "Next attempt" in html and "Retry now" in html

    answer = await operator.submit("/steward/federation/retry", {"host": PEER})
    assert answer.status == 303 and answer.headers["Location"] == "/steward/federation#peers"
    delivery, peer = await queued_for_peer(node)
    assert delivery.next_attempt_at <= utcnow()
    assert peer.backoff_until is None and peer.consecutive_failures == 0
    assert "Retrying birch.example now: 1 delivery due." in await operator.page()

    nothing = await operator.submit("/steward/federation/retry", {"host": "nobody.example"})
    assert nothing.status == 303
    assert "Nothing is queued for nobody.example." in await operator.page()


async def test_the_operator_blocks_with_a_reason_and_unblocks_from_the_page(
    node: NodeHandle,
) -> None:
    await failing_peer(node)
    operator = await as_person(node, "olive", "steward", operator=True)

    blocked = await operator.submit(
        "/steward/federation/blocks", {"domain": "Birch.Example", "reason": "Spam offers"}
    )
    assert blocked.status == 303
    html = await operator.page()
    assert "birch.example is blocked" in html and "Spam offers" in html
    assert "Blocked</span>" in html  # the peer's state
    delivery, _ = await queued_for_peer(node)
    assert delivery.state == "cancelled"  # dropped, not paused

    headers = {"Authorization": f"Bearer {await node.token('olive')}"}
    listed = await (await node.client.get("/api/v1/federation/blocks", headers=headers)).json()
    assert listed["items"] == [
        {"domain": PEER, "created_at": listed["items"][0]["created_at"], "reason": "Spam offers"}
    ]

    removed = await operator.submit("/steward/federation/blocks/remove", {"domain": PEER})
    assert removed.status == 303
    html = await operator.page()
    assert "birch.example is no longer blocked" in html and "No domain is blocked." in html


async def test_a_refused_block_keeps_what_was_typed_and_stores_nothing(node: NodeHandle) -> None:
    operator = await as_person(node, "olive", "steward", operator=True)
    refused = await operator.submit(
        "/steward/federation/blocks", {"domain": "bad domain/x", "reason": "Typed reason"}
    )
    assert refused.status == 422
    html = await refused.text()
    assert 'value="bad domain/x"' in html and 'value="Typed reason"' in html
    assert 'aria-invalid="true"' in html and "not a domain" in html

    too_long = await operator.submit(
        "/steward/federation/blocks", {"domain": "spam.example", "reason": "x" * 501}
    )
    assert too_long.status == 422 and "reason is longer" in await too_long.text()
    async with node.client.app[SESSIONS]() as session:
        assert (await session.scalars(select(BlockedDomain))).all() == []


async def test_a_steward_who_is_not_the_operator_sees_but_cannot_change(node: NodeHandle) -> None:
    await failing_peer(node)
    steward = await as_person(node, "sam", "steward")
    html = await steward.page()
    assert PEER in html and "only its operator can do them" in html
    assert "Retry now" not in html and "Block domain" not in html

    refused = await steward.submit("/steward/federation/blocks", {"domain": "spam.example"})
    assert refused.status == 403
    refused = await steward.submit("/steward/federation/retry", {"host": PEER})
    assert refused.status == 403
    async with node.client.app[SESSIONS]() as session:
        assert (await session.scalars(select(BlockedDomain))).all() == []

    member = await as_person(node, "max", "member")
    assert (await member.get("/steward/federation")).status == 403


async def test_following_a_node_that_cannot_be_read_says_so_and_keeps_the_address(
    node: NodeHandle,
) -> None:
    steward = await as_person(node, "sam", "steward")
    bad = await steward.submit("/steward/federation/peers", {"url": "not an address"})
    assert bad.status == 422 and 'value="not an address"' in await bad.text()
    down = await steward.submit("/steward/federation/peers", {"url": "http://127.0.0.1:9"})
    assert down.status == 422
    text = await down.text()
    assert "That node could not be read" in text and 'value="http://127.0.0.1:9"' in text


async def test_background_work_is_paged_and_includes_the_node_wide_crawls(
    node: NodeHandle,
) -> None:
    async with node.client.app[SESSIONS]() as session:
        community = await CommunityRepository(session).get_local_by_slug("tools")
        assert community is not None
        jobs = JobRepository(session)
        for number in range(22):
            await jobs.enqueue(
                "backfill", {}, community_id=community.id, subject=f"https://p{number}.example/c/x"
            )
        await jobs.enqueue("crawl_peer", {}, subject="https://crawled.example")
        await session.commit()
    steward = await as_person(node, "sam", "steward")

    first = await steward.page()
    assert first.count('class="card job ') == 20
    assert "Reading another node" in first  # the newest, node-wide
    older = re.search(r'href="(/steward/federation\?jobs_cursor=[^"]+)" rel="next"', first)
    assert older, "no link to older work"
    second = await (await steward.get(older.group(1).replace("&amp;", "&"))).text()
    assert second.count('class="card job ') == 3 and 'rel="next"' not in second

    headers = {"Authorization": f"Bearer {await node.token('sam')}"}
    api = await (await node.client.get("/api/v1/federation/jobs?limit=50", headers=headers)).json()
    assert len(api["items"]) == 23 and api["next"] is None


async def test_many_peer_hosts_are_paged_by_name_and_a_bad_cursor_is_a_clear_400(
    node: NodeHandle,
) -> None:
    async with node.client.app[SESSIONS]() as session:
        session.add_all(
            PeerHost(host=f"peer{n:02}.example", consecutive_failures=0) for n in range(53)
        )
        await session.commit()
    steward = await as_person(node, "sam", "steward")

    first = await steward.page()
    assert first.count('class="card peer ') == 50
    assert "peer00.example" in first and "peer50.example" not in first
    more = re.search(r'href="(/steward/federation\?peers_after=[^"]+)" rel="next"', first)
    assert more, "no link to more peers"
    second = await (await steward.get(more.group(1).replace("&amp;", "&"))).text()
    assert second.count('class="card peer ') == 3 and "peer52.example" in second

    bad = await steward.get("/steward/federation?jobs_cursor=not-a-cursor")
    assert bad.status == 400
