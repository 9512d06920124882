"""`commons-node rotate-key` on a serving node: the partner keeps accepting what it signs."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import orjson
import pytest

from federation.contexts import default_context
from federation.signatures import sign_request
from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import community_key, handle, propose_and_approve
from tests.support.api import ApiClient, eventually
from tests.support.processes import RunningNode, cli

pytestmark = pytest.mark.e2e


async def signed_post_as(
    http: aiohttp.ClientSession, sender: RunningNode, slug: str, inbox: str, key: tuple[str, str]
) -> int:
    """POST an activity of `sender`'s community to `inbox`, signed with `key` (id, PEM)."""
    actor = f"{sender.base_url}/c/{slug}"
    activity = {
        "@context": default_context(),
        "id": f"{actor}/activities/{uuid.uuid4().hex}",
        "type": "Like",
        "actor": actor,
        "object": f"{actor}/outbox",
    }
    body = orjson.dumps(activity)
    headers = sign_request(
        "POST", inbox, {"Content-Type": "application/activity+json"}, body, key[0], key[1]
    )
    async with http.post(inbox, data=body, headers=headers) as resp:
        return resp.status


async def share(client: ApiClient, title: str) -> None:
    listing = {"kind": "offer", "title": title, "visibility": "partners"}
    await client.ok("POST", "/api/v1/listings", 201, json=listing)


async def test_after_a_rotation_the_partner_accepts_new_and_grace_period_signatures(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    river, hill = cluster.start("river"), cluster.start("hill")
    river_api, hill_api = await steward(river, http), await steward(hill, http)
    await propose_and_approve(river_api, hill_api, handle(hill, "hill"))
    await share(river_api, "Before")

    async def hill_sees(title: str) -> None:
        body = await hill_api.ok("GET", "/api/v1/listings?include_partners=true")
        assert title in {item["title"] for item in body["items"]}

    await eventually(lambda: hill_sees("Before"), within=40)
    old_key = community_key(river.data)

    rotated = await asyncio.to_thread(cli, "rotate-key", "--data", str(river.data))
    assert rotated.returncode == 0, rotated.stderr
    new_key = community_key(river.data)
    assert new_key[0] != old_key[0] and new_key[1] != old_key[1]

    status, actor = await river_api.call(
        "GET", "/c/river", headers={"Accept": "application/activity+json"}
    )
    assert status == 200
    assert actor["publicKey"]["id"] == new_key[0]
    assert [key["id"] for key in actor["retiredKeys"]] == [old_key[0]]

    # The running node signs with the new key at once, and the partner takes it.
    await share(river_api, "After")
    await eventually(lambda: hill_sees("After"), within=40)

    inbox = f"{hill.base_url}/inbox"
    assert await signed_post_as(http, river, "river", inbox, new_key) == 202
    # Something signed with the old key just before the rotation still verifies.
    assert await signed_post_as(http, river, "river", inbox, old_key) == 202
    # A key river never had does not.
    stranger = (f"{river.base_url}/c/river#key-forged", new_key[1])
    assert await signed_post_as(http, river, "river", inbox, stranger) == 401
