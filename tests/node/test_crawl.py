"""Crawling peers of peers stays within its limits: hops, new nodes a round, blocks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from itertools import pairwise

from aiohttp import web
from sqlalchemy import select

from node.appkeys import SESSIONS
from node.protocol.context import FederationContext
from node.protocol.crawl import CRAWL_PEER, run_crawl_peer
from node.protocol.jobs import JobRun
from storage.models import Job, KnownPeer
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


async def _crawl(node: NodeHandle, base: str, depth: int) -> JobRun:
    run = JobRun(id="t", kind=CRAWL_PEER, payload={"base_url": base, "depth": depth}, attempts=0)
    await run_crawl_peer(FederationContext.from_app(node.client.app))(run)
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
    assert sorted(known) == sorted(LISTED[1:11])
    assert {(p.depth, p.learned_from) for p in known.values()} == {(1, base)}
    assert run.progress["new_peers"] == LISTED[1:11]
    async with node.client.app[SESSIONS]() as db:
        jobs = (await db.scalars(select(Job).where(Job.kind == CRAWL_PEER))).all()
    assert sorted(job.subject or "" for job in jobs) == sorted(LISTED[1:11])
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
