"""Fan-out: one public listing to 1,000 followers on 200 hosts, against its bound.

`python -m tests.benchmarks.bench_fanout [--quick] [--database-url URL]`. The
node (real code: the listings API, the audience, the queue, the delivery
worker) runs in this process; the 200 peer inboxes, one port each, in another
(`tests.benchmarks.peers`). Each follower host has five followers sharing one
inbox, so the listing is signed and sent once per host. The node's figure is
from the `POST /api/v1/listings` that creates the listing until the last peer
has answered. The bound, measured in the same run and alternated with it:
the same 200 signed POSTs of the same body with nothing else, signing on a
pool as wide as the cores and posting at the worker's concurrency. Medians
are printed beside each other with their ratio and written to
`bench-results.json`.
"""

from __future__ import annotations

import asyncio
import os
import time
from concurrent.futures import ThreadPoolExecutor
from statistics import median

import aiohttp
from sqlalchemy import func, insert, select

from federation.http_client import HttpLimits, create_client_session, signed_post
from node.appkeys import SESSIONS
from storage.models import Delivery, Follow
from storage.states import DeliveryState
from tests.benchmarks.delivery_node import BenchNode, bench_node, database_label, run_from_cli
from tests.benchmarks.peers import PeerProcess

HOSTS = 200
FOLLOWERS_PER_HOST = 5


async def _follow(node: BenchNode, peers: PeerProcess) -> None:
    rows = []
    for host in range(HOSTS):
        for n in range(FOLLOWERS_PER_HOST):
            actor = peers.inbox(host, f"/users/u{n}")
            rows.append(
                {
                    "direction": "in",
                    "local_community_id": node.community.id,
                    "remote_actor": actor,
                    "remote_inbox": f"{actor}/inbox",
                    "remote_shared_inbox": peers.inbox(host),
                    "follow_activity_id": f"{actor}/follows/1",
                    "state": "active",
                }
            )
    async with node.app[SESSIONS]() as session, session.begin():
        await session.execute(insert(Follow), rows)


async def _publish(node: BenchNode, http: aiohttp.ClientSession, n: int) -> str:
    body = {"kind": "offer", "title": f"Ladder {n}", "visibility": "public"}
    headers = {"Authorization": f"Bearer {node.token}"}
    async with http.post(f"{node.base_url}/api/v1/listings", json=body, headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        return str((await resp.json())["id"])


async def _recorded(node: BenchNode, listing_id: str) -> float:
    """When every delivery of the listing is recorded as delivered (polled)."""
    while True:
        async with node.app[SESSIONS]() as session:
            done = await session.scalar(
                select(func.count()).where(
                    Delivery.listing_id == listing_id, Delivery.state == DeliveryState.DELIVERED
                )
            )
        if done == HOSTS:
            return time.monotonic()
        await asyncio.sleep(0.005)


async def node_round(
    node: BenchNode, peers: PeerProcess, http: aiohttp.ClientSession, n: int
) -> tuple[float, float]:
    """Seconds until every host has it, and until every delivery is recorded."""
    await peers.expect(http, HOSTS)
    started = time.monotonic()
    listing_id = await _publish(node, http, n)
    arrivals = await peers.arrivals(http)
    recorded = await _recorded(node, listing_id)
    assert len({port for port, _ in arrivals}) == HOSTS
    return max(at for _, at in arrivals) - started, recorded - started


async def bound_round(
    node: BenchNode,
    peers: PeerProcess,
    http: aiohttp.ClientSession,
    out: aiohttp.ClientSession,
    pool: ThreadPoolExecutor,
) -> float:
    """The same POSTs, signed on `pool` (threads as many as the cores: `cryptography`
    releases the GIL), at the worker's concurrency, and nothing else."""
    async with node.app[SESSIONS]() as session:
        body = (await session.scalars(select(Delivery.body).limit(1))).one().encode()
    key_id, key = node.community.key_id, node.community.private_key_pem
    assert key_id is not None and key is not None
    slots = asyncio.Semaphore(node.concurrency)

    async def post(host: int) -> None:
        async with slots:
            result = await signed_post(
                out,
                peers.inbox(host),
                body,
                key_id=key_id,
                private_key_pem=key,
                allow_private=True,
                limits=HttpLimits(),
                sign_on=pool,
            )
            assert result.status == 202

    await peers.expect(http, HOSTS)
    started = time.monotonic()
    await asyncio.gather(*(post(host) for host in range(HOSTS)))
    arrivals = await peers.arrivals(http)
    return max(at for _, at in arrivals) - started


async def run(quick: bool, database_url: str | None) -> dict[str, float]:
    rounds = 3 if quick else 7
    peers = PeerProcess(HOSTS)
    pool = ThreadPoolExecutor(len(os.sched_getaffinity(0)), thread_name_prefix="sign")
    try:
        async with (
            aiohttp.ClientSession() as http,
            create_client_session(
                allow_private=True, user_agent="bench", limits=HttpLimits()
            ) as out,
            bench_node(database_url, http) as node,
        ):
            await _follow(node, peers)
            nodes, recorded, bounds = [], [], []
            for n in range(rounds + 1):  # the first of each warms connections up
                arrived, stored = await node_round(node, peers, http, n)
                bound = await bound_round(node, peers, http, out, pool)
                if n:
                    nodes.append(arrived)
                    recorded.append(stored)
                    bounds.append(bound)
    finally:
        peers.stop()
        pool.shutdown()
    db = database_label(database_url)
    figures = {
        f"fanout.{db}.node_s": round(median(nodes), 4),
        f"fanout.{db}.recorded_s": round(median(recorded), 4),
        f"fanout.{db}.bound_s": round(median(bounds), 4),
    }
    figures[f"fanout.{db}.ratio"] = round(median(nodes) / median(bounds), 2)
    print(
        f"fan-out ({db}) to {HOSTS} hosts, {HOSTS * FOLLOWERS_PER_HOST} followers: "
        f"node {median(nodes) * 1000:.0f} ms (all recorded {median(recorded) * 1000:.0f} ms), "
        f"bound {median(bounds) * 1000:.0f} ms, ratio {figures[f'fanout.{db}.ratio']} "
        f"(target <= 1.25; medians of {rounds})",
        flush=True,
    )
    return figures


if __name__ == "__main__":
    run_from_cli(__doc__, run, "fewer rounds")
