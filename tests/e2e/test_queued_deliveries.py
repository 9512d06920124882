"""A partner listing queued while the partner is down never reaches it once the
audience has changed: real nodes, the partner stopped and started again.

Each test queues a partner-only listing on Alder for Birch while Birch is
down (Alder's first attempt fails and the delivery waits in backoff), then
changes the audience, brings Birch back and makes Alder retry at once. Birch
must receive Alder's later messages but never the listing: its inbox log, which
records every activity it accepted, is searched for the listing's title.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import handle, propose_and_approve, state_of
from tests.support.api import ApiClient, eventually
from tests.support.processes import RunningNode

pytestmark = pytest.mark.e2e

SECRET = "Queued partners-only kiln 5d21"


def query(data: Path, sql: str, *args: Any) -> list[tuple[Any, ...]]:
    db = sqlite3.connect(data / "commons.db")
    try:
        return db.execute(sql, args).fetchall()
    finally:
        db.close()


def received(node: RunningNode) -> str:
    """Every activity the node accepted into its inbox, raw."""
    return "\n".join(row[0] for row in query(node.data, "SELECT raw FROM inbox_log"))


def host_of(node: RunningNode) -> str:
    return node.base_url.split("//")[1]


async def queued_while_down(cluster: Cluster, alice: ApiClient, birch: RunningNode) -> str:
    """Stop Birch, post a partner listing on Alder, wait until Alder's first
    attempt has failed; returns the listing's id."""
    cluster.stop("birch")
    listing = await alice.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": SECRET, "visibility": "partners"},
    )
    alder = cluster.nodes["alder"]

    async def attempted() -> None:
        rows = query(
            alder.data,
            "SELECT attempts, state FROM deliveries WHERE body LIKE ?",
            f"%{SECRET}%",
        )
        assert rows and rows[0][0] >= 1 and rows[0][1] == "queued", rows

    await eventually(attempted)
    return str(listing["id"])


async def bring_back(cluster: Cluster, alice: ApiClient) -> RunningNode:
    """Start Birch again and have Alder retry what is queued for it now."""
    birch = cluster.start("birch")
    await alice.ok("POST", f"/api/v1/federation/peers/{host_of(birch)}/retry", expect=202)
    return birch


async def drained(alder: RunningNode) -> None:
    """Everything Alder queued has gone out or been cancelled."""
    await eventually(lambda: _nothing_queued(alder), within=30)


async def _nothing_queued(alder: RunningNode) -> None:
    rows = query(alder.data, "SELECT state, last_error FROM deliveries WHERE state = 'queued'")
    assert rows == [], rows


def secret_delivery(alder: RunningNode) -> tuple[str, str]:
    [row] = query(
        alder.data, "SELECT state, last_error FROM deliveries WHERE body LIKE ?", f"%{SECRET}%"
    )
    return row[0], row[1]


async def partners(cluster: Cluster, http: aiohttp.ClientSession) -> tuple[ApiClient, ApiClient]:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await propose_and_approve(alice, bob, handle(b, "birch"))
    await eventually(lambda: state_of(bob, "active"))
    return alice, bob


async def test_partner_listing_queued_before_dissolution_never_reaches_the_former_partner(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    alice, bob = await partners(cluster, http)
    await queued_while_down(cluster, alice, cluster.nodes["birch"])
    partnership = await state_of(alice, "active")
    await alice.ok("POST", f"/api/v1/partnerships/{partnership['id']}/dissolve")

    birch = await bring_back(cluster, alice)
    await eventually(lambda: state_of(bob, "dissolved"))
    await drained(cluster.nodes["alder"])

    assert SECRET not in received(birch)
    assert secret_delivery(cluster.nodes["alder"]) == ("cancelled", "partnership ended")
    [peer] = (await alice.ok("GET", "/api/v1/federation/peers"))["items"]
    assert peer["cancelled"] >= 1


async def test_partner_listing_made_community_only_while_queued_never_leaves(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    alice, _ = await partners(cluster, http)
    listing_id = await queued_while_down(cluster, alice, cluster.nodes["birch"])
    await alice.ok("PATCH", f"/api/v1/listings/{listing_id}", json={"visibility": "community"})

    birch = await bring_back(cluster, alice)
    await drained(cluster.nodes["alder"])

    log = received(birch)
    assert f"/listings/{listing_id}" in log  # the withdrawal (a Delete) did arrive
    assert SECRET not in log
    assert secret_delivery(cluster.nodes["alder"])[0] == "cancelled"


async def test_partner_listing_queued_for_a_host_that_is_then_blocked_is_cancelled_not_paused(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    alice, bob = await partners(cluster, http)
    birch = cluster.nodes["birch"]
    await queued_while_down(cluster, alice, birch)
    blocked = host_of(birch)
    await alice.ok("POST", "/api/v1/federation/blocks", expect=201, json={"domain": blocked})

    birch = cluster.start("birch")
    await alice.ok("DELETE", f"/api/v1/federation/blocks/{blocked}", expect=204)
    await alice.ok("POST", f"/api/v1/federation/peers/{blocked}/retry", expect=202)
    await alice.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Shared after the block", "visibility": "partners"},
    )

    async def bob_sees_the_new_one() -> None:
        body = await bob.ok("GET", "/api/v1/listings?include_partners=true")
        assert "Shared after the block" in {item["title"] for item in body["items"]}

    await eventually(bob_sees_the_new_one)
    await drained(cluster.nodes["alder"])
    assert SECRET not in received(birch)
    assert secret_delivery(cluster.nodes["alder"]) == ("cancelled", "host is blocked")
