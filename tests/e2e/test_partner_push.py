"""A proposer with more partner-only listings than one page of its push: once the
Accept arrives it sends them all, from a background job, and the new partner
ends up holding every one. Real nodes: Alder proposes, Birch approves."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from node.protocol.partner_sharing import PAGE_SIZE
from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import handle, propose_and_approve, state_of
from tests.support.api import ApiClient, eventually

pytestmark = pytest.mark.e2e

SHARED = PAGE_SIZE + 12  # two pages of the push


def partner_titles(data: Path) -> set[str]:
    rows = sqlite3.connect(data / "commons.db").execute(
        "SELECT title FROM remote_listings WHERE audience = 'partners'"
    )
    return {row[0] for row in rows}


async def job(client: ApiClient, kind: str) -> dict[str, Any]:
    jobs = (await client.ok("GET", "/api/v1/jobs"))["items"]
    [found] = [item for item in jobs if item["kind"] == kind]
    return dict(found)


async def test_the_proposer_sends_more_than_a_page_of_partner_listings_from_a_job(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    titles = {f"Alder tool {n}" for n in range(SHARED)}
    for title in sorted(titles):
        body = {"kind": "offer", "title": title, "visibility": "partners"}
        await alice.ok("POST", "/api/v1/listings", expect=201, json=body)

    await propose_and_approve(alice, bob, handle(b, "birch"))

    async def pushed() -> None:
        push = await job(alice, "partner_push")
        assert push["status"] == "done", push
        assert push["progress"]["queued"] == push["progress"]["total"] == SHARED
        assert push["progress"]["pages"] == 2

    await eventually(pushed)

    async def birch_holds_them_all() -> None:
        assert partner_titles(b.data) == titles

    await eventually(birch_holds_them_all, within=90)

    partnership = await state_of(alice, "active")
    await alice.ok("POST", f"/api/v1/partnerships/{partnership['id']}/dissolve")

    async def withdrawn() -> None:
        withdrawal = await job(alice, "partner_withdraw")
        assert withdrawal["status"] == "done", withdrawal
        assert withdrawal["progress"]["queued"] == SHARED

    await eventually(withdrawn)
    await eventually(lambda: state_of(bob, "dissolved"))

    async def birch_dropped_them() -> None:
        assert partner_titles(b.data) == set()

    await eventually(birch_dropped_them)
