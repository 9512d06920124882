"""Long network work runs as jobs: requests answer at once, the inbox keeps answering,
and what a remote can make us fetch is bounded and shown to stewards.

The remote is a fake community on loopback whose outbox we can hold open or
make enormous; the node is a real `commons-node serve` process.
"""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.e2e.conftest import STEWARD_PASSWORD, Cluster
from tests.support.api import ApiClient, eventually
from tests.support.fake_community import FakeCommunity, fake_community
from tests.support.processes import RunningNode


async def _partner_with(
    node: RunningNode,
    slug: str,
    fake: FakeCommunity,
    steward: ApiClient,
    http: aiohttp.ClientSession,
) -> dict[str, Any]:
    """The fake proposes; returns the node's pending partnership."""
    actor = f"{node.base_url}/c/{slug}"
    follow = {
        "id": f"{fake.actor_id}/follows/1",
        "type": "Follow",
        "actor": fake.actor_id,
        "object": actor,
        "partnership": True,
    }
    assert await fake.post(http, f"{actor}/inbox", follow) == 202

    async def pending() -> dict[str, Any]:
        items = (await steward.ok("GET", "/api/v1/partnerships"))["items"]
        assert [p["state"] for p in items] == ["pending"]
        return dict(items[0])

    return await eventually(pending)


async def _backfill_job(steward: ApiClient) -> dict[str, Any]:
    jobs = (await steward.ok("GET", "/api/v1/jobs"))["items"]
    backfills = [job for job in jobs if job["kind"] == "backfill"]
    assert len(backfills) == 1, jobs
    return dict(backfills[0])


async def test_approving_a_slow_partner_answers_at_once_and_the_backfill_finishes_as_a_job(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    node = cluster.start("alder")
    steward = await ApiClient(node.base_url, http).login("steward", STEWARD_PASSWORD)
    async with fake_community() as fake, fake_community("bystander") as bystander:
        fake.outbox_gate = asyncio.Event()
        fake.outbox_page = lambda n: [fake.note(i) for i in range(1, 4)] if n == 1 else None
        # The last page names a page on another server: the node must not fetch it.
        fake.next_elsewhere = f"{bystander.actor_id}/outbox?page=1"
        pending = await _partner_with(node, "alder", fake, steward, http)

        approved = await steward.ok("POST", f"/api/v1/partnerships/{pending['id']}/approve")
        assert approved["state"] == "active"
        assert not fake.outbox_gate.is_set()  # answered while the partner's outbox was held

        async def backfill_running() -> None:
            assert fake.outbox_requests >= 1
            assert (await _backfill_job(steward))["status"] == "running"

        await eventually(backfill_running)
        assert await steward.titles("include_public=true") == set()
        fake.outbox_gate.set()

        async def mirrored() -> None:
            assert await steward.titles("include_public=true") == {
                "Fake offer 1",
                "Fake offer 2",
                "Fake offer 3",
            }
            job = await _backfill_job(steward)
            assert job["status"] == "done" and job["subject"] == fake.actor_id
            assert job["progress"]["public"]["kept"] == 3

        await eventually(mirrored)
        assert fake.of_type("Accept")
        assert bystander.outbox_requests == 0


async def test_a_huge_outbox_is_mirrored_up_to_the_limit_while_the_inbox_keeps_answering(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    data = cluster.root / "birch"
    node = cluster.start("birch")
    node.stop()
    with (data / "config.toml").open("a") as config:
        config.write("backfill_max_items = 120\n")
    node = cluster.start("birch")
    steward = await ApiClient(node.base_url, http).login("steward", STEWARD_PASSWORD)
    async with fake_community() as fake:
        # 500 pages of 50: far more than any community shares, served only as asked.
        fake.outbox_page = lambda n: (
            [fake.note(50 * (n - 1) + i) for i in range(1, 51)] if n <= 500 else None
        )
        fake.outbox_gate, fake.gate_from_page = asyncio.Event(), 2
        pending = await _partner_with(node, "birch", fake, steward, http)
        await steward.ok("POST", f"/api/v1/partnerships/{pending['id']}/approve")

        async def first_page_mirrored() -> None:
            assert len(await steward.titles("include_public=true")) == 50

        await eventually(first_page_mirrored)

        # Mid-backfill, a new listing from the same partner is accepted and shown.
        fresh = fake.note(100_000, title="Arrived during the backfill")
        inbox = f"{node.base_url}/c/birch/inbox"
        assert await fake.post(http, inbox, fresh) == 202

        async def fresh_listing_shown() -> None:
            assert "Arrived during the backfill" in await steward.titles("include_public=true")

        await eventually(fresh_listing_shown)
        fake.outbox_gate.set()

        async def stopped_at_the_limit() -> None:
            job = await _backfill_job(steward)
            assert job["status"] == "done"
            assert job["progress"]["public"]["stopped_by"] == "item limit (120)"
            assert "stopped at the item limit (120)" in job["summary"]

        await eventually(stopped_at_the_limit)
        titles = await steward.titles("include_public=true")
        assert len(titles) == 121 and "Arrived during the backfill" in titles
        assert fake.outbox_requests <= 4  # the collection and three pages, never the 500
