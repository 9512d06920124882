"""The relays API: stewards subscribe by actor or inbox URL, see the state, and unsubscribe."""

from __future__ import annotations

import orjson
from sqlalchemy import select

from federation.vocab import PUBLIC
from node.appkeys import SESSIONS
from storage.models import Delivery
from storage.repositories import CommunityRepository
from storage.repositories.follows import FollowRepository
from tests.conftest import NodeHandle
from tests.support.fake_relay import fake_relay


async def _deliveries(node: NodeHandle) -> list[Delivery]:
    async with node.client.app[SESSIONS]() as db:
        return list(await db.scalars(select(Delivery).order_by(Delivery.created_at)))


async def test_a_steward_subscribes_sees_the_state_and_unsubscribes(node: NodeHandle) -> None:
    headers = await node.login("stew", "steward")
    async with fake_relay() as relay:
        resp = await node.client.post(
            "/api/v1/relays", json={"url": relay.actor_id}, headers=headers
        )
        assert resp.status == 201, await resp.text()
        added = await resp.json()
        assert (added["actor_id"], added["inbox"], added["state"]) == (
            relay.actor_id,
            relay.inbox,
            "pending",
        )
        again = await node.client.post("/api/v1/relays", json={"url": relay.inbox}, headers=headers)
        assert again.status == 409

    listed = await (await node.client.get("/api/v1/relays", headers=headers)).json()
    assert [r["id"] for r in listed["items"]] == [added["id"]] and listed["next"] is None

    [follow] = await _deliveries(node)
    body = orjson.loads(follow.body)
    assert follow.target_inbox == relay.inbox
    assert (body["type"], body["object"]) == ("Follow", PUBLIC)

    # A LitePub relay follows the community back; unsubscribing ends that too.
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug("tools")
        assert local is not None
        await FollowRepository(db).upsert(
            direction="in",
            local_community_id=local.id,
            remote_actor=relay.actor_id,
            follow_activity_id=f"{relay.base}/activities/follow-back",
            state="active",
            remote_inbox=relay.inbox,
        )
        await db.commit()

    gone = await node.client.delete(f"/api/v1/relays/{added['id']}", headers=headers)
    assert gone.status == 204
    undo = orjson.loads((await _deliveries(node))[-1].body)
    assert (undo["type"], undo["object"]["id"]) == ("Undo", body["id"])
    listed = await (await node.client.get("/api/v1/relays", headers=headers)).json()
    assert listed["items"] == []
    missing = await node.client.delete(f"/api/v1/relays/{added['id']}", headers=headers)
    assert missing.status == 404

    listing = {"kind": "offer", "title": "Public ladder", "visibility": "public"}
    assert (await node.client.post("/api/v1/listings", json=listing, headers=headers)).status == 201
    assert len([d for d in await _deliveries(node) if d.target_inbox == relay.inbox]) == 2


async def test_members_cannot_manage_relays_and_bad_addresses_change_nothing(
    node: NodeHandle,
) -> None:
    member = await node.login("mem")
    steward = await node.login("stew", "steward")
    for method, path in (("GET", "/api/v1/relays"), ("DELETE", "/api/v1/relays/x")):
        resp = await node.client.request(method, path, headers=member)
        assert resp.status == 403
    resp = await node.client.post(
        "/api/v1/relays", json={"url": "https://relay.example/actor"}, headers=member
    )
    assert resp.status == 403
    for url, status in (
        ("ftp://relay.example/actor", 422),
        ("not a url at all", 422),
        ("http://127.0.0.1:9/actor", 400),
    ):
        resp = await node.client.post("/api/v1/relays", json={"url": url}, headers=steward)
        assert resp.status == status, (url, await resp.text())
        assert (await resp.json())["error"]["message"]
    bad_cursor = await node.client.get("/api/v1/relays?cursor=nonsense", headers=steward)
    assert bad_cursor.status == 400
    assert await _deliveries(node) == []
