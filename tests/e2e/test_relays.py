"""Two real nodes and a relay between them: public listings travel through it, nothing else."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_public_federation import post, stored_text
from tests.support.api import ApiClient, eventually
from tests.support.fake_relay import PUBLIC, fake_relay

pytestmark = pytest.mark.e2e

SECRET_PARTNERS = "Partners-only trailer 5d2e"
SECRET_COMMUNITY = "Community-only ladder 0c81"


async def _relay_state(client: ApiClient, state: str) -> dict[str, Any]:
    body = await client.ok("GET", "/api/v1/relays")
    assert [r["state"] for r in body["items"]] == [state], body
    return dict(body["items"][0])


@pytest.mark.parametrize("mode", ["announce", "forward"])
async def test_public_listing_reaches_another_node_through_a_relay_and_others_do_not(
    cluster: Cluster, http: aiohttp.ClientSession, mode: str
) -> None:
    """`announce`: a LitePub relay wraps what it relays in Announce; `forward`: a
    Mastodon-style relay forwards the original Create, signed by the relay."""
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    async with fake_relay(mode) as relay:
        added = await alice.ok("POST", "/api/v1/relays", expect=201, json={"url": relay.actor_id})
        assert added["state"] == "pending"
        # The inbox URL works too: the relay's actor is found beside it.
        await bob.ok("POST", "/api/v1/relays", expect=201, json={"url": relay.inbox})
        subscription = await eventually(lambda: _relay_state(alice, "active"))
        await eventually(lambda: _relay_state(bob, "active"))
        assert subscription["actor_id"] == relay.actor_id

        await post(alice, SECRET_PARTNERS, visibility="partners")
        await post(alice, SECRET_COMMUNITY)
        await post(alice, "Relayed wheelbarrow", is_public=True)

        async def arrived() -> dict[str, Any]:
            body = await bob.ok("GET", "/api/v1/listings?include_public=true")
            remote = [x for x in body["items"] if x["origin"] == "public"]
            assert [x["title"] for x in remote] == ["Relayed wheelbarrow"], remote
            return dict(remote[0])

        wheelbarrow = await eventually(arrived, within=30)
        if mode == "forward":
            # Only the origin's word counts: the forwarded Delete has bob look again.
            mine = (await alice.ok("GET", "/api/v1/listings"))["items"]
            [original] = [x for x in mine if x["title"] == "Relayed wheelbarrow"]
            await alice.ok("DELETE", f"/api/v1/listings/{original['id']}", expect=204)

            async def removed() -> None:
                body = await bob.ok("GET", "/api/v1/listings?include_public=true")
                assert [x for x in body["items"] if x["origin"] == "public"] == []

            await eventually(removed, within=30)
        assert wheelbarrow["community"]["name"] == "Alder Commons"
        assert wheelbarrow["visibility"] == "public"

        sent_to_relay = b"\n".join(relay.bodies).decode()
        assert "Relayed wheelbarrow" in sent_to_relay
        for secret in (SECRET_PARTNERS, SECRET_COMMUNITY):
            assert secret not in sent_to_relay
            assert secret not in stored_text(b.data)

        await alice.ok("DELETE", f"/api/v1/relays/{subscription['id']}", expect=204)

        async def undone() -> None:
            undos = relay.of_type("Undo")
            assert [u["object"]["object"] for u in undos] == [PUBLIC]
            assert [s for s in relay.subscribers if s.startswith(a.base_url)] == []

        await eventually(undone)
        assert (await alice.ok("GET", "/api/v1/relays"))["items"] == []
