"""Two and three real nodes over real HTTP: public listings federate, nothing else does."""

from __future__ import annotations

import sqlite3
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.support.api import ApiClient, eventually

pytestmark = pytest.mark.e2e

SECRET_COMMUNITY = "Community-only spare key 7f3a"
SECRET_PARTNERS = "Partners-only van 91bc"


async def post(client: ApiClient, title: str, **fields: Any) -> dict[str, Any]:
    body = {"kind": "offer", "title": title, "description": f"About {title}", **fields}
    return dict(await client.ok("POST", "/api/v1/listings", expect=201, json=body))


def stored_text(data_dir: Any) -> str:
    """Everything a node's database holds that came from or goes to other nodes."""
    db = sqlite3.connect(data_dir / "commons.db")
    rows = db.execute("SELECT raw FROM inbox_log").fetchall()
    rows += db.execute("SELECT body FROM deliveries").fetchall()
    rows += db.execute("SELECT title || ' ' || description FROM remote_listings").fetchall()
    return "\n".join(row[0] for row in rows)


async def test_public_listing_reaches_a_peer_and_private_ones_never_do(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await post(bob, "Public ladder", is_public=True, location={"lat": 51.501234, "lon": -0.1})
    await post(bob, SECRET_COMMUNITY)
    await post(bob, SECRET_PARTNERS, visibility="partners")

    learned = await alice.ok(
        "POST", "/api/v1/discovery/peers", expect=201, json={"url": b.base_url}
    )
    assert [c["handle"] for c in learned["communities"]] == [f"birch@{b.base_url[7:]}"]

    async def mirrored() -> dict[str, Any]:
        body = await alice.ok("GET", "/api/v1/listings?include_public=true")
        remote = [x for x in body["items"] if x["origin"] == "public"]
        assert [x["title"] for x in remote] == ["Public ladder"]
        return dict(remote[0])

    ladder = await eventually(mirrored)
    assert ladder["community"]["name"] == "Birch Commons"
    assert ladder["visibility"] == "public"
    assert ladder["location"] == {"lat": 51.5, "lon": -0.1, "precision": "neighbourhood"}
    assert await alice.titles() == set()

    created_later = await post(bob, "Public wheelbarrow", is_public=True)
    await eventually(lambda: _has(alice, "Public wheelbarrow"))

    for secret in (SECRET_COMMUNITY, SECRET_PARTNERS):
        assert secret not in stored_text(a.data)
        assert secret not in stored_text(b.data)
        assert secret not in await _everything_public(http, b.base_url, created_later)


async def _has(client: ApiClient, title: str, present: bool = True) -> None:
    titles = await client.titles("include_public=true")
    assert (title in titles) is present, titles


async def _everything_public(
    http: aiohttp.ClientSession, base: str, listing: dict[str, Any]
) -> str:
    """Every document B serves without credentials, concatenated."""
    host = base.split("//")[1]
    urls = [
        f"{base}/c/birch",
        f"{base}/c/birch/outbox",
        f"{base}/c/birch/outbox?page=1",
        f"{base}/c/birch/followers",
        f"{base}/nodeinfo/2.1",
        f"{base}/.well-known/nodeinfo",
        f"{base}/.well-known/webfinger?resource=acct:birch@{host}",
        listing["ap_id"],
    ]
    texts = []
    for url in urls:
        async with http.get(url, headers={"Accept": "application/activity+json"}) as resp:
            assert resp.status == 200, url
            texts.append(await resp.text())
    return "\n".join(texts)


async def test_edits_withdrawals_and_deletes_reach_the_mirror(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await alice.ok("POST", "/api/v1/discovery/peers", expect=201, json={"url": b.base_url})
    drill = await post(bob, "Drill", is_public=True)
    saw = await post(bob, "Saw", is_public=True)
    await eventually(lambda: _has(alice, "Saw"))

    await bob.ok("PATCH", f"/api/v1/listings/{drill['id']}", json={"title": "Hammer drill"})
    await eventually(lambda: _has(alice, "Hammer drill"))
    await _has(alice, "Drill", present=False)

    await bob.ok("PATCH", f"/api/v1/listings/{saw['id']}", json={"visibility": "community"})
    await eventually(lambda: _has(alice, "Saw", present=False))

    await bob.ok("DELETE", f"/api/v1/listings/{drill['id']}", expect=204)
    await eventually(lambda: _has(alice, "Hammer drill", present=False))

    await bob.ok("PATCH", f"/api/v1/listings/{saw['id']}", json={"is_public": True})
    await eventually(lambda: _has(alice, "Saw"))


async def test_deliveries_survive_receiver_downtime_and_sender_restart(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await alice.ok("POST", "/api/v1/discovery/peers", expect=201, json={"url": b.base_url})
    await post(bob, "Before the outage", is_public=True)
    await eventually(lambda: _has(alice, "Before the outage"))

    assert cluster.stop("alder") == 0
    await post(bob, "During the outage", is_public=True)
    peers = await eventually(lambda: _peer_failed(bob))
    assert peers["queued"] >= 1
    assert cluster.stop("birch") == 0

    b = cluster.start("birch")
    a = cluster.start("alder")
    bob = await steward(b, http)
    alice = await steward(a, http)
    host = a.base_url.split("//")[1]
    await bob.ok("POST", f"/api/v1/federation/peers/{host}/retry", expect=202)
    await eventually(lambda: _has(alice, "During the outage"))
    titles = [
        x["title"] for x in (await alice.ok("GET", "/api/v1/listings?include_public=true"))["items"]
    ]
    assert sorted(titles) == ["Before the outage", "During the outage"]
    received = sqlite3.connect(a.data / "commons.db").execute(
        "SELECT count(*) FROM inbox_log WHERE raw LIKE '%During the outage%'"
    )
    assert received.fetchone() == (1,)
    sent = sqlite3.connect(b.data / "commons.db").execute(
        "SELECT state, attempts FROM deliveries WHERE body LIKE '%During the outage%'"
    )
    state, attempts = sent.fetchone()
    assert state == "delivered"
    assert attempts >= 2


async def _peer_failed(client: ApiClient) -> dict[str, Any]:
    body = await client.ok("GET", "/api/v1/federation/peers")
    failing = [p for p in body["items"] if p["failures"] > 0]
    assert failing, body
    return dict(failing[0])
