"""Crawling peers of peers stays within its limits: hops, new nodes a round, blocks."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from itertools import pairwise
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from federation.builders import build_actor_document
from federation.keys import generate_key_pair
from federation.vocab import parse_activity
from node.appkeys import SESSIONS
from node.protocol.context import FederationContext
from node.protocol.crawl import (
    CRAWL_PEER,
    INSTANCE_PEERS_MAX_BYTES,
    REFRESH_DIRECTORY,
    pick_due,
    run_crawl_peer,
    run_refresh_directory,
)
from node.protocol.handlers import Ignored, on_create_or_update
from node.protocol.jobs import JobRun
from storage.models import Community, Job, KnownPeer, utcnow
from storage.repositories import BlockRepository
from tests.conftest import NodeHandle
from tests.support.inprocess import serving
from tests.support.processes import free_port

LISTED = [f"http://peer{n}.test" for n in range(15)]


@asynccontextmanager
async def fake_node(peers: list[str]) -> AsyncIterator[str]:
    """A node that publishes NodeInfo with `peers` and no communities."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"

    async def links(_: web.Request) -> web.Response:
        rel = "http://nodeinfo.diaspora.software/ns/schema/2.1"
        return web.json_response({"links": [{"rel": rel, "href": f"{base}/nodeinfo/2.1"}]})

    async def info(_: web.Request) -> web.Response:
        return web.json_response({"metadata": {"communities": [], "peers": peers}})

    app = web.Application()
    app.router.add_get("/.well-known/nodeinfo", links)
    app.router.add_get("/nodeinfo/2.1", info)
    async with serving(app, port):
        yield base


def _context(node: NodeHandle, **settings: Any) -> FederationContext:
    ctx = FederationContext.from_app(node.client.app)
    return FederationContext(ctx.sessions, ctx.http, ctx.config.model_copy(update=settings))


async def _crawl(node: NodeHandle, base: str, depth: int, **settings: Any) -> JobRun:
    run = JobRun(id="t", kind=CRAWL_PEER, payload={"base_url": base, "depth": depth}, attempts=0)
    await run_crawl_peer(_context(node, **settings))(run)
    return run


async def _known(node: NodeHandle) -> dict[str, KnownPeer]:
    async with node.client.app[SESSIONS]() as db:
        return {p.base_url: p for p in (await db.scalars(select(KnownPeer))).all()}


async def test_a_crawl_records_a_bounded_number_of_new_nodes_one_hop_further(
    node: NodeHandle,
) -> None:
    async with node.client.app[SESSIONS]() as db:
        await BlockRepository(db).add("peer0.test")
        await db.commit()
    listed = [*LISTED, node.config.base_url, "ftp://nope.test", "not a url"]
    async with fake_node(listed) as base:
        run = await _crawl(node, base, depth=0)
    known = await _known(node)
    # The per-round limit (10), skipping the blocked node, ourselves and non-URLs.
    assert len(known) == 10 and set(known) <= set(LISTED[1:])
    assert {(p.depth, p.learned_from) for p in known.values()} == {(1, base)}
    assert sorted(run.progress["new_peers"]) == sorted(known)
    async with node.client.app[SESSIONS]() as db:
        jobs = (await db.scalars(select(Job).where(Job.kind == CRAWL_PEER))).all()
    assert sorted(job.subject or "" for job in jobs) == sorted(known)
    runs_at = sorted(job.next_run_at for job in jobs)
    assert all(later > earlier for earlier, later in pairwise(runs_at))


async def test_a_crawl_at_the_last_hop_learns_no_further_nodes(node: NodeHandle) -> None:
    async with fake_node(LISTED) as base:
        run = await _crawl(node, base, depth=2)
    assert await _known(node) == {}
    assert run.progress["new_peers"] == []


async def test_a_blocked_node_is_not_read(node: NodeHandle) -> None:
    async with fake_node(LISTED) as base:
        async with node.client.app[SESSIONS]() as db:
            await BlockRepository(db).add(base.removeprefix("http://"))
            await db.commit()
        run = await _crawl(node, base, depth=0)
    assert run.progress == {"skipped": "domain is blocked"}
    assert await _known(node) == {}


@dataclass
class FakeServer:
    """Another server, on 127.0.0.1: NodeInfo with what `peers` and `communities` say, a
    Mastodon-style peers array (`instance_peers`, as JSON or raw bytes), and one actor."""

    base: str = ""
    peers: list[str] = field(default_factory=list)
    instance_peers: Any = None
    listed: bool = False
    offers: int = 0
    hits: Counter[str] = field(default_factory=Counter)

    @property
    def actor_id(self) -> str:
        return f"{self.base}/c/orchard"


@asynccontextmanager
async def fake_server(server: FakeServer) -> AsyncIterator[FakeServer]:
    port = free_port()
    server.base = f"http://127.0.0.1:{port}"
    _, public_pem = generate_key_pair()

    @web.middleware
    async def count(request: web.Request, handler: Any) -> web.StreamResponse:
        server.hits[request.path] += 1
        return await handler(request)

    async def links(_: web.Request) -> web.Response:
        rel = "http://nodeinfo.diaspora.software/ns/schema/2.1"
        return web.json_response({"links": [{"rel": rel, "href": f"{server.base}/nodeinfo/2.1"}]})

    async def info(_: web.Request) -> web.Response:
        entry = {"id": server.actor_id, "name": "Orchard", "publicOfferCount": server.offers}
        entry["publicNeedCount"] = 0
        communities = [entry] if server.listed else []
        return web.json_response({"metadata": {"communities": communities, "peers": server.peers}})

    async def instance_peers(_: web.Request) -> web.Response:
        if server.instance_peers is None:
            raise web.HTTPNotFound()
        if isinstance(server.instance_peers, bytes):
            return web.Response(body=server.instance_peers, content_type="application/json")
        return web.json_response(server.instance_peers)

    async def actor(_: web.Request) -> web.Response:
        document = build_actor_document(
            actor_id=server.actor_id,
            preferred_username="orchard",
            name="Orchard",
            description="",
            inbox=f"{server.actor_id}/inbox",
            outbox=f"{server.actor_id}/outbox",
            followers=f"{server.actor_id}/followers",
            shared_inbox=f"{server.base}/inbox",
            public_key_pem=public_pem,
            url=server.actor_id,
            public_offer_count=server.offers,
            discoverable=server.listed,
        )
        return web.json_response(document, content_type="application/activity+json")

    app = web.Application(middlewares=[count])
    app.router.add_get("/.well-known/nodeinfo", links)
    app.router.add_get("/nodeinfo/2.1", info)
    app.router.add_get("/api/v1/instance/peers", instance_peers)
    app.router.add_get("/c/orchard", actor)
    async with serving(app, port):
        yield server


async def _jobs(node: NodeHandle, kind: str) -> list[Job]:
    async with node.client.app[SESSIONS]() as db:
        return list((await db.scalars(select(Job).where(Job.kind == kind))).all())


async def test_a_mastodon_peers_array_is_read_when_nodeinfo_lists_no_peers(
    node: NodeHandle,
) -> None:
    async with node.client.app[SESSIONS]() as db:
        await BlockRepository(db).add("blocked.test")
        await db.commit()
    hosts = [
        "one.test",
        "ONE.test",
        "two.test:8443",
        "blocked.test",
        "user@evil.test",
        "three.test/path",
        "http://four.test",
        "",
        42,
        None,
        "five.test",
    ]
    async with fake_server(FakeServer(instance_peers=hosts)) as server:
        run = await _crawl(node, server.base, depth=0)
    # Host names only, each once, in the listing node's scheme; never a blocked one.
    expected = ["http://one.test", "http://two.test:8443", "http://five.test"]
    assert sorted(run.progress["new_peers"]) == sorted(expected)
    assert sorted(await _known(node)) == sorted(expected)
    assert server.hits["/api/v1/instance/peers"] == 1


async def test_a_peers_array_is_not_asked_for_when_nodeinfo_lists_peers(
    node: NodeHandle,
) -> None:
    server = FakeServer(peers=["http://one.test"], instance_peers=["two.test"])
    async with fake_server(server):
        run = await _crawl(node, server.base, depth=0)
    assert run.progress["new_peers"] == ["http://one.test"]
    assert server.hits["/api/v1/instance/peers"] == 0


async def test_a_peers_array_is_bounded_in_size_and_entries(node: NodeHandle) -> None:
    huge = b'["' + b"a" * INSTANCE_PEERS_MAX_BYTES + b'.test"]'
    async with fake_server(FakeServer(instance_peers=huge)) as server:
        run = await _crawl(node, server.base, depth=0)
    assert run.progress["new_peers"] == []
    assert await _known(node) == {}
    # Only the first thousand entries are looked at: a valid host after them is not.
    padded = ["not a host"] * 1000 + ["late.test"]
    async with fake_server(FakeServer(instance_peers=padded)) as server:
        run = await _crawl(node, server.base, depth=0)
    assert run.progress["new_peers"] == []
    # And the last hop asks for no list at all.
    async with fake_server(FakeServer(instance_peers=["one.test"])) as server:
        await _crawl(node, server.base, depth=2)
    assert server.hits["/api/v1/instance/peers"] == 0


async def test_a_node_keeps_at_most_its_limit_of_known_nodes(node: NodeHandle) -> None:
    async with fake_node(LISTED[:4]) as base:
        run = await _crawl(node, base, depth=0, discovery_max_known_peers=3)
    first = run.progress["new_peers"]
    assert len(first) == 3 and set(first) <= set(LISTED[:4])
    async with fake_node(LISTED[4:]) as base:
        run = await _crawl(node, base, depth=0, discovery_max_known_peers=3)
    assert run.progress["new_peers"] == []
    assert sorted(await _known(node)) == sorted(first)


async def test_the_new_nodes_a_crawl_takes_are_not_always_the_first_listed(
    node: NodeHandle,
) -> None:
    listed = [f"http://peer{n:03}.test" for n in range(200)]
    async with fake_node(listed) as base:
        run = await _crawl(node, base, depth=0)
    # Ten of two hundred: the first ten by chance once in about 2e16.
    assert sorted(run.progress["new_peers"]) != listed[:10]


async def test_two_crawls_listing_the_same_new_nodes_record_and_queue_each_once(
    node: NodeHandle,
) -> None:
    async with fake_node(LISTED[:5]) as first, fake_node(LISTED[:5]) as second:
        runs = await asyncio.gather(_crawl(node, first, 0), _crawl(node, second, 0))
    found = [url for run in runs for url in run.progress["new_peers"]]
    assert sorted(found) == sorted(LISTED[:5])
    assert sorted(job.subject or "" for job in await _jobs(node, CRAWL_PEER)) == sorted(LISTED[:5])


async def test_a_shorter_way_to_a_known_node_lowers_its_depth(node: NodeHandle) -> None:
    async with fake_node(LISTED[:1]) as far:
        await _crawl(node, far, depth=1)
    assert (await _known(node))[LISTED[0]].depth == 2
    async with fake_node(LISTED[:1]) as near:
        run = await _crawl(node, near, depth=0)
    assert run.progress["new_peers"] == []  # known already: not queued again
    peer = (await _known(node))[LISTED[0]]
    assert (peer.depth, peer.learned_from) == (1, near)


async def test_a_community_is_read_again_only_when_it_may_have_changed(node: NodeHandle) -> None:
    async with fake_server(FakeServer(listed=True, offers=2)) as server:
        await _crawl(node, server.base, depth=0)
        await _crawl(node, server.base, depth=0)
        assert server.hits["/c/orchard"] == 1  # unchanged in NodeInfo: not fetched again
        server.offers = 3
        await _crawl(node, server.base, depth=0)
        assert server.hits["/c/orchard"] == 2
        async with node.client.app[SESSIONS]() as db:
            row = await db.scalar(select(Community).where(Community.ap_id == server.actor_id))
            assert row is not None and row.public_offer_count == 3 and row.is_discoverable
            row.fetched_at = utcnow() - timedelta(days=2)  # a day old: read again
            await db.commit()
        await _crawl(node, server.base, depth=0)
        assert server.hits["/c/orchard"] == 3
        server.listed = False  # it opted out: no longer listed, its actor says so
        await _crawl(node, server.base, depth=0)
        assert server.hits["/c/orchard"] == 4
        await _crawl(node, server.base, depth=0)
        assert server.hits["/c/orchard"] == 4  # known to have opted out, recently read
    async with node.client.app[SESSIONS]() as db:
        row = await db.scalar(select(Community).where(Community.ap_id == server.actor_id))
        assert row is not None and not row.is_discoverable


async def test_a_refresh_round_reads_a_bounded_number_of_nodes_never_read_first(
    node: NodeHandle,
) -> None:
    now = utcnow()
    async with node.client.app[SESSIONS]() as db:
        for n, url in enumerate(LISTED[:6]):
            checked = None if n == 5 else now - timedelta(days=1, hours=n)
            db.add(KnownPeer(base_url=url, depth=1, last_checked_at=checked))
        db.add(KnownPeer(base_url="http://recent.test", depth=0, last_checked_at=now))
        await db.commit()
    ctx = _context(node, discovery_crawls_per_round=3, discovery_crawl_spacing_seconds=10)
    run = JobRun(id="r", kind=REFRESH_DIRECTORY, payload={}, attempts=0)
    await run_refresh_directory(ctx)(run)
    assert run.progress["crawls_queued"] == 3
    jobs = sorted(await _jobs(node, CRAWL_PEER), key=lambda job: job.next_run_at)
    # The never-read one first, then two of those read over a day ago; spaced; the
    # one read just now not at all.
    assert jobs[0].subject == LISTED[5]
    assert {job.subject for job in jobs[1:]} < set(LISTED[:5])
    assert all(b.next_run_at - a.next_run_at >= timedelta(seconds=9) for a, b in pairwise(jobs))
    # The never-read one, still queued, is drawn again but not queued twice.
    await run_refresh_directory(ctx)(run)
    again = run.progress["crawls_queued"]
    assert again <= 2 and len(await _jobs(node, CRAWL_PEER)) == 3 + again


def test_nodes_draw_their_own_peers_to_refresh_the_longer_unread_the_likelier() -> None:
    now = utcnow()
    peers = [
        KnownPeer(base_url=f"http://p{n}.test", last_checked_at=now - timedelta(hours=6))
        for n in range(40)
    ]
    stale = KnownPeer(base_url="http://stale.test", last_checked_at=now - timedelta(days=5))
    rng = random.Random(1)
    picks: Counter[str] = Counter()
    rounds = 400  # 400 nodes that learned the network together, each drawing 10 of 41
    for _ in range(rounds):
        picks.update(peer.base_url for peer in pick_due([*peers, stale], 10, now, rng))
    # Least recently read first would have every node read the same ten (400 each);
    # drawn, each is read by about a quarter of them.
    assert max(count for url, count in picks.items() if url != "http://stale.test") < 150
    assert picks["http://stale.test"] > 0.95 * rounds  # twenty times older: nearly always


def _actor_update(actor_id: str) -> Any:
    return parse_activity(
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"{actor_id}#updates/1",
            "type": "Update",
            "actor": actor_id,
            "object": {"id": actor_id, "type": "Group", "discoverable": True},
        }
    )


async def test_an_actor_update_reads_the_actor_again_from_its_own_server(
    node: NodeHandle,
) -> None:
    ctx = _context(node)
    async with fake_server(FakeServer(listed=True)) as server:
        await _crawl(node, server.base, depth=0)
        server.listed = False  # the actor now says discoverable: false
        # What the activity embeds is not taken on trust: the origin's document is.
        await on_create_or_update(ctx, _actor_update(server.actor_id))
        assert server.hits["/c/orchard"] == 2
        with pytest.raises(Ignored):  # an actor we never kept is not worth a request
            await on_create_or_update(ctx, _actor_update(f"{server.base}/c/stranger"))
    async with node.client.app[SESSIONS]() as db:
        row = await db.scalar(select(Community).where(Community.ap_id == server.actor_id))
        assert row is not None and not row.is_discoverable
