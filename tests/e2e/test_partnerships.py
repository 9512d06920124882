"""Partnerships between real nodes: both stewards must agree; partner listings reach
partners only; dissolving purges them on both sides."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from federation.signatures import sign_request
from tests.e2e.conftest import Cluster, steward
from tests.support.api import ApiClient, eventually
from tests.support.processes import RunningNode, cli

pytestmark = pytest.mark.e2e


def handle(node: RunningNode, slug: str) -> str:
    return f"{slug}@{node.base_url.split('//')[1]}"


def community_key(data: Path) -> tuple[str, str]:
    row = (
        sqlite3.connect(data / "commons.db")
        .execute("SELECT key_id, private_key_pem FROM communities WHERE is_local")
        .fetchone()
    )
    return str(row[0]), str(row[1])


def cached_titles(data: Path) -> set[str]:
    rows = sqlite3.connect(data / "commons.db").execute("SELECT title FROM remote_listings")
    return {row[0] for row in rows}


async def state_of(client: ApiClient, expected: str) -> dict[str, Any]:
    items = (await client.ok("GET", "/api/v1/partnerships"))["items"]
    assert [p["state"] for p in items] == [expected], items
    return dict(items[0])


async def titles(client: ApiClient) -> dict[str, str]:
    body = await client.ok("GET", "/api/v1/listings?include_public=true&include_partners=true")
    return {item["title"]: item["origin"] for item in body["items"]}


async def signed_get(http: aiohttp.ClientSession, url: str, data: Path) -> int:
    key_id, pem = community_key(data)
    headers = sign_request("GET", url, {"Accept": "application/activity+json"}, None, key_id, pem)
    async with http.get(url, headers=headers) as resp:
        return resp.status


async def propose_and_approve(a: ApiClient, b: ApiClient, target: str) -> None:
    await a.ok("POST", "/api/v1/partnerships/propose", expect=201, json={"target": target})
    pending = await eventually(lambda: state_of(b, "pending"))
    await b.ok("POST", f"/api/v1/partnerships/{pending['id']}/approve")
    await eventually(lambda: state_of(a, "active"))


async def test_partnership_needs_a_steward_on_each_side_and_shares_only_with_partners(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster.start("alder"), cluster.start("birch"), cluster.start("cedar")
    alice, bob, carol = await steward(a, http), await steward(b, http), await steward(c, http)
    assert (
        cli(
            "member",
            "add",
            "--data",
            str(a.data),
            "--username",
            "ann",
            "--password",
            "ann-password",
        ).returncode
        == 0
    )
    ann = await ApiClient(a.base_url, http).login("ann", "ann-password")
    shared = await bob.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Partners van", "visibility": "partners"},
    )
    await bob.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "need", "title": "Birch private", "visibility": "community"},
    )
    await carol.ok("POST", "/api/v1/discovery/peers", expect=201, json={"url": b.base_url})

    member_try = await ann.call(
        "POST", "/api/v1/partnerships/propose", json={"target": handle(b, "birch")}
    )
    assert member_try[0] == 403
    proposed = await alice.ok(
        "POST",
        "/api/v1/partnerships/propose",
        expect=201,
        json={"target": handle(b, "birch"), "message": "Share tools?"},
    )
    assert proposed["state"] == "proposed"
    assert proposed["initiated_by"] == "us"
    assert proposed["partner"]["name"] == "Birch Commons"
    own = await alice.call("POST", f"/api/v1/partnerships/{proposed['id']}/approve")
    assert own[0] == 409
    again = await alice.call(
        "POST", "/api/v1/partnerships/propose", json={"target": handle(b, "birch")}
    )
    assert again[0] == 409

    pending = await eventually(lambda: state_of(bob, "pending"))
    assert pending["initiated_by"] == "them"
    notes = await bob.ok("GET", "/api/v1/notifications")
    assert notes["unread"] == 1
    assert "Partners van" not in await titles(alice)

    await bob.ok("POST", f"/api/v1/partnerships/{pending['id']}/approve")
    await eventually(lambda: state_of(alice, "active"))
    assert (await bob.ok("GET", "/api/v1/notifications"))["unread"] == 0

    async def alice_sees_van() -> None:
        assert (await titles(alice)).get("Partners van") == "partner"

    await eventually(alice_sees_van)

    async def both_backfills_done() -> None:
        for side in (alice, bob):
            jobs = (await side.ok("GET", "/api/v1/jobs"))["items"]
            backfills = [job for job in jobs if job["kind"] == "backfill"]
            assert backfills and all(job["status"] == "done" for job in backfills), jobs

    # The approving side's backfill may ask for the partner collection before the
    # proposer has handled the Accept: that is not a failure to retry.
    await eventually(both_backfills_done)
    await bob.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Partners trailer", "visibility": "partners"},
    )
    await eventually(lambda: _sees(ann, "Partners trailer", "partner"))
    assert "Birch private" not in await titles(alice)

    assert await signed_get(http, shared["ap_id"], a.data) == 200
    assert await signed_get(http, shared["ap_id"], c.data) == 404
    async with http.get(shared["ap_id"], headers={"Accept": "application/activity+json"}) as r:
        assert r.status == 404
    assert await signed_get(http, f"{b.base_url}/c/birch/partner-listings", c.data) == 404
    seen_by_c = await titles(carol)
    assert "Partners van" not in seen_by_c and "Partners trailer" not in seen_by_c
    assert not {"Partners van", "Partners trailer"} & cached_titles(c.data)


async def _sees(client: ApiClient, title: str, origin: str | None) -> None:
    assert (await titles(client)).get(title) == origin


async def test_dissolving_purges_partner_listings_on_both_sides(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await alice.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Alder partners drill", "visibility": "partners"},
    )
    await bob.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Birch partners saw", "visibility": "partners"},
    )
    await propose_and_approve(alice, bob, handle(b, "birch"))
    await eventually(lambda: _sees(alice, "Birch partners saw", "partner"))
    await eventually(lambda: _sees(bob, "Alder partners drill", "partner"))

    partnership = await state_of(alice, "active")
    dissolved = await alice.ok("POST", f"/api/v1/partnerships/{partnership['id']}/dissolve")
    assert dissolved["state"] == "dissolved"
    await _sees(alice, "Birch partners saw", None)
    await eventually(lambda: state_of(bob, "dissolved"))
    await eventually(lambda: _sees(bob, "Alder partners drill", None))
    assert "Alder partners drill" not in cached_titles(b.data)
    assert "Birch partners saw" not in cached_titles(a.data)

    await alice.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "After the end", "visibility": "partners"},
    )
    sent = sqlite3.connect(a.data / "commons.db").execute(
        "SELECT count(*) FROM deliveries WHERE body LIKE '%After the end%'"
    )
    assert sent.fetchone() == (0,)


async def test_rejection_and_unsolicited_accept(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster.start("alder"), cluster.start("birch"), cluster.start("cedar")
    alice, bob = await steward(a, http), await steward(b, http)
    await alice.ok(
        "POST", "/api/v1/partnerships/propose", expect=201, json={"target": handle(b, "birch")}
    )
    pending = await eventually(lambda: state_of(bob, "pending"))
    rejected = await bob.ok("POST", f"/api/v1/partnerships/{pending['id']}/reject")
    assert rejected["state"] == "rejected"
    await eventually(lambda: state_of(alice, "rejected"))
    again = await bob.call("POST", f"/api/v1/partnerships/{pending['id']}/approve")
    assert again[0] == 409

    key_id, pem = community_key(c.data)
    cedar = f"{c.base_url}/c/cedar"
    accept = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": f"{cedar}/activities/{uuid.uuid4().hex}",
        "type": "Accept",
        "actor": cedar,
        "object": {
            "id": f"{a.base_url}/c/alder/activities/made-up",
            "type": "Follow",
            "actor": f"{a.base_url}/c/alder",
            "object": cedar,
            "partnership": True,
        },
        "partnership": True,
    }
    body = orjson.dumps(accept)
    url = f"{a.base_url}/inbox"
    headers = sign_request(
        "POST", url, {"Content-Type": "application/activity+json"}, body, key_id, pem
    )
    async with http.post(url, data=body, headers=headers) as resp:
        assert resp.status == 202

    def recorded() -> Any:
        return (
            sqlite3.connect(a.data / "commons.db")
            .execute("SELECT state FROM inbox_log WHERE activity_id = ?", (accept["id"],))
            .fetchone()
        )

    async def ignored() -> None:
        assert recorded() == ("ignored",)

    await eventually(ignored)
    assert [p["state"] for p in (await alice.ok("GET", "/api/v1/partnerships"))["items"]] == [
        "rejected"
    ]
