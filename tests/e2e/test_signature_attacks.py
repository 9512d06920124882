"""Attacks on signatures and inboxes, tried against real nodes by a fake server.

Each test plays what an outsider did to an earlier version: having one node
sign a request and replaying it to its partner, having a node deliver to a
server of the attacker's choosing, starving a node with slow key servers,
flooding it with partnership proposals, and reading its network off 401s.
"""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import handle, propose_and_approve, state_of
from tests.support.api import ApiClient, eventually
from tests.support.fake_remote import FakeRemote, Seen, fake_remote
from tests.support.processes import RunningNode, free_port

pytestmark = pytest.mark.e2e

ACCEPT_AS = "application/activity+json"


async def _partner_listing(client: ApiClient, title: str) -> None:
    await client.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": title, "visibility": "partners"},
    )


async def test_signature_made_for_an_attackers_server_does_not_open_a_partners_listings(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await _partner_listing(alice, "Alder partners drill")
    await propose_and_approve(bob, alice, handle(a, "alder"))
    collection = "/c/alder/partner-listings"

    async with fake_remote() as evil:
        # A "key" on the attacker's host whose path is Alder's partner collection:
        # to check the signature, Birch fetches it, signed with its own key.
        evil.add_actor("mallory")
        follow = evil.activity("Follow", "mallory", f"{b.base_url}/c/birch")
        await evil.post(http, f"{b.base_url}/inbox", follow, key_id=f"{evil.base}{collection}")

        async def birch_signed_a_fetch() -> Seen:
            [fetch] = evil.requests("GET", collection)
            assert "Signature" in fetch.headers
            return fetch

        captured = await eventually(birch_signed_a_fetch)

    replayed = {name: captured.headers[name] for name in ("Signature", "Date", "Host")}
    async with http.get(
        f"{a.base_url}{collection}", headers={**replayed, "Accept": ACCEPT_AS}
    ) as response:
        body = await response.text()
        status = response.status
    assert "Alder partners drill" not in body
    assert status == 404


async def test_actor_with_its_inbox_on_another_host_never_makes_the_node_post_there(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    node = cluster.start("alder")
    alice = await steward(node, http)
    community = f"{node.base_url}/c/alder"
    async with fake_remote() as bystander, fake_remote() as evil:
        elsewhere = f"{bystander.base}/inbox"
        evil.add_actor("fox", actor_type="Person", inbox=elsewhere)
        evil.add_actor("owl", actor_type="Person", shared_inbox=elsewhere)
        evil.add_actor("wren", actor_type="Person")
        statuses = {}
        for slug in ("fox", "owl", "wren"):
            follow = evil.activity("Follow", slug, community)
            statuses[slug] = (await evil.post(http, f"{community}/inbox", follow))[0]
        assert statuses["owl"] == statuses["wren"] == 202

        async def follows_accepted() -> None:
            paths = {seen.path for seen in evil.posted("Accept")}
            assert {"/c/owl/inbox", "/c/wren/inbox"} <= paths, paths

        await eventually(follows_accepted)
        await alice.ok(
            "POST",
            "/api/v1/listings",
            expect=201,
            json={"kind": "offer", "title": "Public ladder", "is_public": True},
        )

        async def listing_reached(path: str) -> None:
            paths = {seen.path for seen in evil.posted("Create", "Public ladder")}
            assert path in paths, paths

        await eventually(lambda: listing_reached("/inbox"))  # wren's shared inbox
        assert [(seen.method, seen.path) for seen in bystander.seen] == []
        # owl's shared inbox elsewhere was dropped: it is reached at its own inbox
        await eventually(lambda: listing_reached("/c/owl/inbox"))
        assert bystander.seen == []
    assert statuses["fox"] == 401


async def test_refused_signature_says_nothing_about_the_nodes_network(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    node = cluster.start("alder")
    community = f"{node.base_url}/c/alder"
    closed = free_port()
    async with fake_remote() as broken:
        # Actors whose key cannot be had: a closed port, and a server that errs.
        unreachable = FakeRemote(f"http://127.0.0.1:{closed}")
        unreachable.add_actor("ghost")
        answers = []
        for remote, slug in ((unreachable, "ghost"), (broken, "nobody")):
            follow = remote.activity("Follow", slug, community)
            answers.append(await remote.post(http, f"{community}/inbox", follow))
    for status, _, text in answers:
        assert status == 401
        assert "signature could not be verified" in text
        for detail in (str(closed), broken.host, "127.0.0.1", "404", "refused", "connect"):
            assert detail not in text.lower(), text

    async def logged() -> None:
        log = node.log()
        assert f"127.0.0.1:{closed}" in log and "could not be fetched" in log

    await eventually(logged)


async def _pending(client: ApiClient) -> list[dict[str, Any]]:
    items = (await client.ok("GET", "/api/v1/partnerships"))["items"]
    return [p for p in items if p["state"] == "pending"]


def _unhandled(node: RunningNode) -> int:
    with sqlite3.connect(node.data / "commons.db") as db:
        row = db.execute("SELECT count(*) FROM inbox_log WHERE state = 'received'").fetchone()
    return int(row[0])


async def test_proposal_flood_is_rate_limited_and_leaves_few_pending_proposals(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    node = cluster.start("alder")
    alice = await steward(node, http)
    community = f"{node.base_url}/c/alder"
    answers = []
    async with fake_remote() as evil:
        for n in range(40):
            slug = evil.add_actor(f"fake{n}").rsplit("/", 1)[1]
            proposal = evil.activity("Follow", slug, community, partnership=True)
            answers.append(await evil.post(http, f"{community}/inbox", proposal))

        async def all_handled() -> None:
            assert _unhandled(node) == 0

        await eventually(all_handled)
    statuses = [status for status, _, _ in answers]
    assert statuses.count(202) <= 25, statuses  # a burst of 20, and what refills meanwhile
    assert statuses[-1] == 429
    limited = next(headers for status, headers, _ in answers if status == 429)
    assert int(limited["Retry-After"]) >= 1
    pending = await _pending(alice)
    assert 1 <= len(pending) <= 3, pending


async def test_slow_key_servers_do_not_hold_up_deliveries_or_honest_senders(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    node = cluster.start("alder")
    alice = await steward(node, http)
    community = f"{node.base_url}/c/alder"
    flood_http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
    async with fake_remote() as partner, fake_remote() as slow, flood_http:
        partner.add_actor("pine")
        proposal = partner.activity("Follow", "pine", community, partnership=True)
        assert (await partner.post(http, f"{community}/inbox", proposal))[0] == 202
        pending = await eventually(lambda: state_of(alice, "pending"))
        await alice.ok("POST", f"/api/v1/partnerships/{pending['id']}/approve")
        await eventually(lambda: _received(partner, "Accept"))

        slow.hang_actor_documents = True
        inbox = f"{community}/inbox"
        signed = [slow.sign(inbox, slow.activity("Follow", f"s{n}", community)) for n in range(110)]
        for n in range(110):
            slow.add_actor(f"s{n}")
        flood = [asyncio.create_task(slow.send(flood_http, inbox, each)) for each in signed]

        async def flood_under_way() -> None:
            # Each request has been answered or is waiting on its key: the
            # unfixed node had 100 fetches hanging at this point.
            waiting = len(slow.requests("GET"))
            assert waiting + sum(task.done() for task in flood) >= 100

        await eventually(flood_under_way)

        await _partner_listing(alice, "Partners saw")
        await eventually(lambda: _received(partner, "Create", "Partners saw"), within=10)
        like = partner.activity("Like", "pine", community)
        status, _, _ = await asyncio.wait_for(
            partner.post(http, f"{community}/inbox", like), timeout=10
        )
        assert status == 202

        answered = await asyncio.wait_for(asyncio.gather(*flood), timeout=30)
    refused_at_once = [headers for status, headers, _ in answered if status == 503]
    assert len(refused_at_once) >= 80
    assert all(int(headers["Retry-After"]) >= 1 for headers in refused_at_once)
    assert len(slow.requests("GET")) <= 20


async def _received(remote: FakeRemote, kind: str, containing: str = "") -> None:
    assert remote.posted(kind, containing), [s.path for s in remote.seen]
