"""No partner learns who the others are: real nodes, Alder partnered with Birch and Cedar.

Everything Birch receives from Alder (its inbox log records every accepted
activity) and everything Alder serves to Birch's signed fetches is searched
for Cedar's actor id and host, and the other way round.
"""

from __future__ import annotations

from typing import Any

import aiohttp
import orjson
import pytest

from federation.signatures import sign_request
from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import community_key, handle, state_of
from tests.e2e.test_queued_deliveries import drained, host_of, received
from tests.support.api import ApiClient, eventually
from tests.support.processes import RunningNode

pytestmark = pytest.mark.e2e


async def signed_fetch(http: aiohttp.ClientSession, url: str, reader: RunningNode) -> str:
    key_id, pem = community_key(reader.data)
    headers = sign_request("GET", url, {"Accept": "application/activity+json"}, None, key_id, pem)
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.text()


async def partner_titles(client: ApiClient) -> set[str]:
    body = await client.ok("GET", "/api/v1/listings?include_partners=true")
    return {item["title"] for item in body["items"] if item["origin"] == "partner"}


async def post(client: ApiClient, title: str) -> dict[str, Any]:
    body = {"kind": "offer", "title": title, "visibility": "partners"}
    return dict(await client.ok("POST", "/api/v1/listings", expect=201, json=body))


async def partner_with(alice: ApiClient, other: ApiClient, target: str) -> None:
    """Alder proposes, the other approves; Alder may already have other partners."""
    await alice.ok("POST", "/api/v1/partnerships/propose", expect=201, json={"target": target})
    pending = await eventually(lambda: state_of(other, "pending"))
    await other.ok("POST", f"/api/v1/partnerships/{pending['id']}/approve")

    async def active_on_alder() -> None:
        items = (await alice.ok("GET", "/api/v1/partnerships"))["items"]
        assert {p["partner"]["handle"]: p["state"] for p in items}[target] == "active"

    await eventually(active_on_alder)


async def test_each_partner_is_named_alone_in_what_it_receives_and_fetches(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b, c = cluster.start("alder"), cluster.start("birch"), cluster.start("cedar")
    alice, bob, carol = await steward(a, http), await steward(b, http), await steward(c, http)
    await partner_with(alice, bob, handle(b, "birch"))
    drill = await post(alice, "Partners drill")
    await partner_with(alice, carol, handle(c, "cedar"))  # the drill is pushed to Cedar
    await alice.ok("PATCH", f"/api/v1/listings/{drill['id']}", json={"title": "Partners drill 2"})
    ladder = await post(alice, "Partners ladder")

    async def both_hold(titles: set[str]) -> None:
        assert await partner_titles(bob) == titles
        assert await partner_titles(carol) == titles

    await eventually(lambda: both_hold({"Partners drill 2", "Partners ladder"}))
    await alice.ok("DELETE", f"/api/v1/listings/{ladder['id']}", expect=204)
    await eventually(lambda: both_hold({"Partners drill 2"}))
    await drained(a)

    birch, cedar = f"{b.base_url}/c/birch", f"{c.base_url}/c/cedar"
    for reader, other, other_node in ((b, cedar, c), (c, birch, b)):
        seen = [received(reader)]
        seen.append(await signed_fetch(http, drill["ap_id"], reader))
        collection = f"{a.base_url}/c/alder/partner-listings"
        seen.append(await signed_fetch(http, collection, reader))
        first_page = await signed_fetch(http, f"{collection}?page=true", reader)
        assert "Partners drill 2" in first_page
        seen.append(first_page)
        for text in seen:
            assert other not in text
            assert host_of(other_node) not in text
    note = orjson.loads(await signed_fetch(http, drill["ap_id"], b))
    assert note["to"] == [birch]
