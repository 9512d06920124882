"""One node scaled out on PostgreSQL: two `serve --no-workers`, two `worker`, one killed.

A thousand deliveries (100 public listings, each to 10 followers on 10 fake
servers) are queued through both web processes while no worker runs, so
that the web processes are seen to send nothing themselves. Then two
workers start; once a good part has arrived one of them is SIGKILLed, mid
batch. Every delivery must still arrive and end `delivered` in the
database.

What "exactly once" can mean here: a worker killed after a peer answered
2xx but before it recorded the answer cannot know the peer has it, so that
delivery is sent again once its lease lapses (at-least-once delivery;
receivers deduplicate by activity id, as ours and every fediverse server
do). The fake peers record every POST. The test asserts that each
activity reached each inbox, that the peers' deduplicated view holds each
exactly once, and that any second copy is of a delivery first sent before
the kill and no more of them than the killed worker could have had in
flight: nothing is sent twice by two live workers.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select

from federation.delivery import DeliveryWorker
from storage.engine import create_engine, create_session_factory
from storage.models import Delivery, Follow
from storage.repositories import CommunityRepository
from storage.states import DeliveryState, FollowDirection, FollowState
from tests.support.api import ApiClient
from tests.support.processes import cli, free_port, wait_until_up

pytestmark = pytest.mark.e2e

PEERS = 10
LISTINGS = 100
DELIVERIES = PEERS * LISTINGS
LEASE_SECONDS = 20
"""Longer than a batch of 50 takes here even on a slow machine: a lease that lapses
under a live worker would let the other send its deliveries too."""
PASSWORD = "steward-password"
# The killed worker can have had at most its concurrent POSTs in flight, plus
# answers it had not yet recorded: never more than the leases a worker holds,
# by default four times its concurrency.
IN_FLIGHT_BOUND = 4 * DeliveryWorker.__init__.__kwdefaults__["concurrency"]


@dataclass
class Peers:
    """Fake servers on loopback that record every activity POSTed to them, and when."""

    ports: list[int]
    posts: list[tuple[int, str, float]] = field(default_factory=list)

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        assert request.transport is not None
        port = request.transport.get_extra_info("sockname")[1]
        self.posts.append((port, orjson.loads(body)["id"], time.monotonic()))
        await asyncio.sleep(0.005)  # a real inbox takes a moment: kills land mid-request
        return web.Response(status=202)

    def unique(self) -> set[tuple[int, str]]:
        return {(port, activity) for port, activity, _ in self.posts}


@asynccontextmanager
async def serving_peers() -> AsyncIterator[Peers]:
    """Started inside the test, so that they are served by the test's own event loop."""
    recorder = Peers(ports=[free_port() for _ in range(PEERS)])
    app = web.Application()
    app.router.add_post("/{tail:.*}", recorder.handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    for port in recorder.ports:
        await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield recorder
    finally:
        await runner.cleanup()


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)
            try:
                self.popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


def start(name: str, data: Path, *args: str) -> Process:
    log = data.parent / f"{name}.log"
    env = {**os.environ, "COMMONS_DELIVERY_LEASE_SECONDS": str(LEASE_SECONDS)}
    popen = subprocess.Popen(
        [sys.executable, "-m", "node.cli", *args, "--data", str(data)],
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=env,
    )
    return Process(name, popen, log)


async def add_followers(database_url: str, peers: Peers) -> None:
    """One follower per fake server, each with its own inbox there."""
    engine = create_engine(database_url)
    try:
        async with create_session_factory(engine)() as session:
            community = await CommunityRepository(session).get_local_by_slug("big")
            assert community is not None
            for n, port in enumerate(peers.ports):
                actor = f"http://127.0.0.1:{port}/users/f{n}"
                session.add(
                    Follow(
                        direction=FollowDirection.IN,
                        local_community_id=community.id,
                        remote_actor=actor,
                        remote_inbox=f"{actor}/inbox",
                        follow_activity_id=f"{actor}/follows/1",
                        state=FollowState.ACTIVE,
                    )
                )
            await session.commit()
    finally:
        await engine.dispose()


async def delivery_states(database_url: str) -> dict[str, int]:
    engine = create_engine(database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Delivery.state, func.count()).group_by(Delivery.state)
            )
            return {state: count for state, count in rows}
    finally:
        await engine.dispose()


async def until(seconds: float, check: Any, interval: float = 0.2) -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(interval)


@pytest.mark.parametrize("empty_database_url", ["postgresql"], indirect=True)
async def test_two_web_and_two_worker_processes_deliver_everything_once_despite_a_kill(
    tmp_path: Path, empty_database_url: str
) -> None:
    async with serving_peers() as peers:
        await scale_out(tmp_path, empty_database_url, peers)


async def scale_out(tmp_path: Path, database_url: str, peers: Peers) -> None:
    data = tmp_path / "node"
    web_ports = [free_port(), free_port()]
    base_url = f"http://127.0.0.1:{web_ports[0]}"
    created = await asyncio.to_thread(
        cli,
        "init", "--data", str(data), "--name", "Big Commons", "--slug", "big",
        "--base-url", base_url, "--steward", "steward", "--password", PASSWORD,
        "--allow-private-addresses", "--database-url", database_url,
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    await add_followers(database_url, peers)

    processes = [
        start(f"web{n}", data, "serve", "--no-workers", "--port", str(port))
        for n, port in enumerate(web_ports)
    ]
    try:
        for process, port in zip(processes, web_ports, strict=True):
            await asyncio.to_thread(
                wait_until_up, f"http://127.0.0.1:{port}/healthz", process.popen, 120
            )
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
            first = await ApiClient(base_url, http).login("steward", PASSWORD)
            clients = [first, ApiClient(f"http://127.0.0.1:{web_ports[1]}", http, first.token)]

            async def post(n: int) -> None:
                listing = {"kind": "offer", "title": f"Ladder {n}", "visibility": "public"}
                await clients[n % 2].ok("POST", "/api/v1/listings", 201, json=listing)

            for start_at in range(0, LISTINGS, 10):
                await asyncio.gather(*(post(n) for n in range(start_at, start_at + 10)))

        # The web processes queue; they never send.
        assert await delivery_states(database_url) == {DeliveryState.QUEUED: DELIVERIES}
        await asyncio.sleep(1.5)
        assert peers.posts == []

        worker_ports = [free_port(), free_port()]
        workers = [
            start(f"worker{n}", data, "worker", "--metrics-port", str(port))
            for n, port in enumerate(worker_ports)
        ]
        processes += workers
        for process, port in zip(workers, worker_ports, strict=True):
            await asyncio.to_thread(
                wait_until_up, f"http://127.0.0.1:{port}/readyz", process.popen, 120
            )

        async def a_third_arrived() -> bool:
            return len(peers.posts) >= DELIVERIES // 3

        await until(120, a_third_arrived, interval=0.02)
        killed_at = time.monotonic()
        workers[0].stop(signal.SIGKILL)
        assert workers[0].popen.returncode == -signal.SIGKILL
        assert len(peers.posts) < DELIVERIES, "the kill came too late to prove anything"

        async def all_delivered() -> bool:
            states = await delivery_states(database_url)
            return states.get(DeliveryState.DELIVERED, 0) == DELIVERIES

        await until(LEASE_SECONDS + 120, all_delivered)
        async with aiohttp.ClientSession() as http:
            metrics_url = f"http://127.0.0.1:{worker_ports[1]}/metrics"
            async with http.get(metrics_url) as resp:
                assert resp.status == 200
                exposition = await resp.text()
        survivor = next(
            sample.value
            for family in text_string_to_metric_families(exposition)
            for sample in family.samples
            if sample.name == "commons_deliveries_total" and sample.labels["outcome"] == "delivered"
        )
        assert 0 < survivor <= DELIVERIES
    finally:
        for process in processes:
            process.stop()

    expected = {(port, activity) for port, activity, _ in peers.posts}
    assert len(expected) == DELIVERIES  # 100 activities x 10 inboxes, each received
    per_port = Counter(port for port, _ in expected)
    assert set(per_port.values()) == {LISTINGS}
    copies = Counter((port, activity) for port, activity, _ in peers.posts)
    resent = {key for key, count in copies.items() if count > 1}
    first_seen = {}
    for port, activity, at in peers.posts:
        first_seen.setdefault((port, activity), at)
    # Only the killed worker's unrecorded answers come again, and only after its lease.
    assert all(first_seen[key] < killed_at for key in resent)
    assert all(count == 2 for key, count in copies.items() if key in resent)
    assert len(resent) <= IN_FLIGHT_BOUND
    for process in processes[:2] + processes[3:]:
        assert process.popen.returncode == 0, process.log.read_text()
