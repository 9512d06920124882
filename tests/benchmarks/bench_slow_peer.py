"""One slow peer: 2,000 activities to an inbox that answers after 50 ms, and fairness.

`python -m tests.benchmarks.bench_slow_peer [--quick] [--database-url URL]`.
The node (real code: the queue and the delivery worker) runs in this process,
the peers (`tests.benchmarks.peers`: one slow inbox, one fast) in another.
Measured in the same run:

- the node sending 2,000 queued activities to the slow peer, from the commit
  that queues them until the last is answered, against one-at-a-time sending
  (sign, POST, wait for the answer, next: what a queue that waits for each
  answer does). One-at-a-time is timed on a sample and scaled to 2,000, since
  it is linear by construction and would take minutes (target: >= 10 x faster);
- 200 activities to the fast peer alone, and the same 200 queued *after* the
  slow peer's 2,000 and sent alongside them: the fast peer's time should not
  grow past 2 x (fairness: a slow host never holds up the others).

Medians are printed beside their baselines, with ratios, and written to
`bench-results.json`.
"""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from statistics import median
from typing import Any

import aiohttp
import orjson
from sqlalchemy import func, insert, select

from federation.http_client import HttpLimits, create_client_session, signed_post
from node.appkeys import SESSIONS
from node.protocol.workers import wake_delivery
from storage.models import Delivery, utcnow
from storage.repositories.deliveries import inbox_host
from storage.states import DeliveryState
from tests.benchmarks.delivery_node import BenchNode, bench_node, database_label, run_from_cli
from tests.benchmarks.peers import PeerProcess

DELAY_MS = 50
SLOW, FAST = 0, 1  # the peers' inbox numbers


def _activity(node: BenchNode, name: str, n: int) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{node.base_url}/bench/{name}/{n}",
        "type": "Create",
        "actor": node.community.ap_id,
        "object": {"type": "Note", "content": f"offer {n} " + "x" * 600},
    }


async def _send(
    node: BenchNode,
    peers: PeerProcess,
    http: aiohttp.ClientSession,
    batches: dict[int, int],
    run: str,
) -> dict[int, float]:
    """Queue `batches` (peer -> how many, in that order), commit, and wait for every
    answer; returns each peer's seconds from the commit to its last answer.

    The rows go in as one executemany of what `enqueue_activity` writes, in one
    short transaction: two thousand calls of it would hold SQLite's only write
    lock for seconds, which is the benchmark's doing, not the worker's.
    """
    await peers.expect(http, sum(batches.values()))
    now = utcnow()
    rows = [
        {
            "activity_id": activity["id"],
            "sender_community_id": node.community.id,
            "target_inbox": peers.inbox(peer),
            "host": inbox_host(peers.inbox(peer)),
            "body": orjson.dumps(activity).decode(),
            "state": "queued",
            "attempts": 0,
            "next_attempt_at": now + timedelta(microseconds=i),  # queued in this order
            "created_at": now,
        }
        for i, (peer, activity) in enumerate(
            (peer, _activity(node, f"{run}-{peer}", n))
            for peer, count in batches.items()
            for n in range(count)
        )
    ]
    async with node.app[SESSIONS]() as session:
        await session.execute(insert(Delivery), rows)
        started = time.monotonic()
        await session.commit()
    wake_delivery(node.app)
    last: dict[int, float] = {}
    for port, at in await peers.arrivals(http):
        peer = peers.ports.index(port)
        last[peer] = max(last.get(peer, 0.0), at - started)
    await _all_recorded(node)
    return last


async def _all_recorded(node: BenchNode) -> None:
    """Until nothing is queued, so one round's recording does not overlap the next."""
    while True:
        async with node.app[SESSIONS]() as session:
            queued = await session.scalar(
                select(func.count()).where(Delivery.state == DeliveryState.QUEUED)
            )
        if not queued:
            return
        await asyncio.sleep(0.05)


async def _one_at_a_time(
    node: BenchNode, peers: PeerProcess, http: aiohttp.ClientSession, count: int
) -> float:
    """Seconds per activity, sending like a queue that waits for each answer."""
    key_id, key = node.community.key_id, node.community.private_key_pem
    assert key_id is not None and key is not None
    async with create_client_session(
        allow_private=True, user_agent="bench", limits=HttpLimits()
    ) as out:
        await peers.expect(http, count)
        started = time.monotonic()
        for n in range(count):
            body = orjson.dumps(_activity(node, "serial", n))
            result = await signed_post(
                out,
                peers.inbox(SLOW),
                body,
                key_id=key_id,
                private_key_pem=key,
                allow_private=True,
                limits=HttpLimits(),
            )
            assert result.status == 202
        arrivals = await peers.arrivals(http)
    return (max(at for _, at in arrivals) - started) / count


async def run(quick: bool, database_url: str | None) -> dict[str, float]:
    slow_count, fast_count = (500, 100) if quick else (2000, 200)
    serial_sample, rounds = (40, 1) if quick else (150, 3)
    peers = PeerProcess(2, slow=1, delay_ms=DELAY_MS)
    node_s, serial_s, alone_s, beside_s = [], [], [], []
    try:
        async with aiohttp.ClientSession() as http, bench_node(database_url, http) as node:
            await _send(node, peers, http, {FAST: 20}, "warm")
            for r in range(rounds):
                node_s.append((await _send(node, peers, http, {SLOW: slow_count}, f"s{r}"))[SLOW])
                serial_s.append(await _one_at_a_time(node, peers, http, serial_sample))
                alone_s.append((await _send(node, peers, http, {FAST: fast_count}, f"f{r}"))[FAST])
                both = {SLOW: slow_count, FAST: fast_count}
                beside_s.append((await _send(node, peers, http, both, f"b{r}"))[FAST])
    finally:
        peers.stop()
    db = database_label(database_url)
    serial = median(serial_s) * slow_count
    figures = {
        f"slow_peer.{db}.activities": slow_count,
        f"slow_peer.{db}.node_s": round(median(node_s), 3),
        f"slow_peer.{db}.one_at_a_time_s": round(serial, 3),
        f"slow_peer.{db}.speedup": round(serial / median(node_s), 2),
        f"slow_peer.{db}.fast_alone_s": round(median(alone_s), 3),
        f"slow_peer.{db}.fast_beside_slow_s": round(median(beside_s), 3),
        f"slow_peer.{db}.fairness_ratio": round(median(beside_s) / median(alone_s), 2),
    }
    print(
        f"slow peer ({db}, answers after {DELAY_MS} ms): {slow_count} activities in "
        f"{median(node_s):.2f} s; one at a time {serial:.1f} s (from {serial_sample}); "
        f"{figures[f'slow_peer.{db}.speedup']} x faster (target >= 10)\n"
        f"fast peer, {fast_count} activities: alone {median(alone_s):.3f} s, beside the slow "
        f"peer's {slow_count} {median(beside_s):.3f} s, ratio "
        f"{figures[f'slow_peer.{db}.fairness_ratio']} (target <= 2); medians of {rounds}",
        flush=True,
    )
    return figures


if __name__ == "__main__":
    run_from_cli(__doc__, run, "fewer activities and rounds")
