"""Exchanges inside one node: the cycle, who may do what, and what is refused."""

from __future__ import annotations

from typing import Any

from tests.conftest import NodeHandle

Headers = dict[str, str]


async def post(node: NodeHandle, path: str, headers: Headers, body: Any = None) -> Any:
    resp = await node.client.post(f"/api/v1{path}", json=body, headers=headers)
    return resp.status, await resp.json() if resp.content_length != 0 else None


async def get(node: NodeHandle, path: str, headers: Headers) -> tuple[int, Any]:
    resp = await node.client.get(f"/api/v1{path}", headers=headers)
    return resp.status, await resp.json()


async def listing(node: NodeHandle, headers: Headers, **fields: Any) -> dict[str, Any]:
    body = {"kind": "offer", "title": "Cordless drill", **fields}
    status, created = await post(node, "/listings", headers, body)
    assert status == 201, created
    return dict(created)


async def test_request_accept_message_complete_inside_one_community(node: NodeHandle) -> None:
    ada, bob = await node.login("ada"), await node.login("bob")
    drill = await listing(node, ada)
    status, exchange = await post(
        node, "/exchanges", bob, {"listing": drill["id"], "hours": 2, "note": "Saturday?"}
    )
    assert status == 201, exchange
    assert exchange["status"] == "requested"
    assert exchange["listing"]["ap_id"] == drill["ap_id"]
    assert exchange["listing"]["title"] == "Cordless drill"
    assert exchange["provider"]["member"] == "ada@tools.test"
    assert exchange["receiver"]["member"] == "bob@tools.test"
    assert exchange["provider_community_id"] == exchange["receiver_community_id"]
    assert exchange["is_cross_community"] is False
    assert exchange["hours"] == 2.0
    assert exchange["actions"] == ["cancel"]

    status, seen_by_ada = await get(node, f"/exchanges/{exchange['id']}", ada)
    assert status == 200
    assert seen_by_ada["actions"] == ["accept", "decline", "cancel"]
    assert seen_by_ada["other_party_name"] == "bob"

    status, accepted = await post(node, f"/exchanges/{exchange['id']}/accept", ada)
    assert (status, accepted["status"]) == (200, "accepted")
    status, message = await post(
        node, f"/exchanges/{exchange['id']}/messages", bob, {"text": "See you at ten"}
    )
    assert status == 201, message
    status, thread = await get(node, f"/exchanges/{exchange['id']}/messages", ada)
    assert [m["text"] for m in thread["items"]] == ["See you at ten"]
    assert thread["items"][0]["author"] == "bob@tools.test"
    assert thread["items"][0]["is_mine"] is False
    status, completed = await post(node, f"/exchanges/{exchange['id']}/complete", bob)
    assert (status, completed["status"]) == (200, "completed")
    assert completed["messages_count"] == 1
    assert completed["actions"] == []

    status, mine = await get(node, "/exchanges", bob)
    assert [item["id"] for item in mine["items"]] == [exchange["id"]]
    status, cross = await get(node, "/exchanges?cross_community=true", bob)
    assert cross["items"] == []


async def test_a_need_is_answered_by_a_provider(node: NodeHandle) -> None:
    ada, bob = await node.login("ada"), await node.login("bob")
    need = await listing(node, ada, kind="need", title="Help moving a sofa")
    status, exchange = await post(node, "/exchanges", bob, {"listing": need["ap_id"]})
    assert status == 201
    assert exchange["provider"]["member"] == "bob@tools.test"
    assert exchange["receiver"]["member"] == "ada@tools.test"


async def test_wrong_party_and_wrong_state_are_refused(node: NodeHandle) -> None:
    ada, bob, cy = await node.login("ada"), await node.login("bob"), await node.login("cy")
    drill = await listing(node, ada)
    _, exchange = await post(node, "/exchanges", bob, {"listing": drill["id"]})
    path = f"/exchanges/{exchange['id']}"
    assert (await post(node, f"{path}/accept", bob))[0] == 403
    assert (await post(node, f"{path}/complete", ada))[0] == 409
    assert (await get(node, path, cy))[0] == 404
    assert (await post(node, f"{path}/accept", cy))[0] == 404
    assert (await post(node, f"{path}/messages", cy, {"text": "hi"}))[0] == 404
    assert (await post(node, f"{path}/decline", ada))[0] == 200
    assert (await post(node, f"{path}/accept", ada))[0] == 409
    assert (await post(node, f"{path}/cancel", bob))[0] == 409
    _, after = await get(node, path, bob)
    assert after["status"] == "declined"


async def test_a_listing_the_member_may_not_see_is_not_found(node: NodeHandle) -> None:
    ada = await node.login("ada")
    assert (await post(node, "/exchanges", ada, {"listing": "nope"}))[0] == 404
    assert (
        await post(node, "/exchanges", ada, {"listing": "http://elsewhere.test/c/x/listings/1"})
    )[0] == 404
    own = await listing(node, ada)
    assert (await post(node, "/exchanges", ada, {"listing": own["id"]}))[0] == 409
    status, _ = await post(node, "/exchanges", ada, {"listing": own["id"], "hours": -1})
    assert status == 422
    status, mine = await get(node, "/exchanges", ada)
    assert mine["items"] == []


async def test_flows_count_completed_exchanges_for_stewards(node: NodeHandle) -> None:
    ada, bob = await node.login("ada"), await node.login("bob")
    steward = await node.login("stew", "steward")
    drill = await listing(node, ada)
    _, exchange = await post(node, "/exchanges", bob, {"listing": drill["id"], "hours": 3})
    await post(node, f"/exchanges/{exchange['id']}/accept", ada)
    await post(node, f"/exchanges/{exchange['id']}/complete", ada)
    status, flows = await get(node, "/metrics/flows", steward)
    assert status == 200
    assert flows["internal"] == {"count": 1, "hours": 3.0}
    assert flows["outgoing"] == {"count": 0, "hours": 0.0}
    assert flows["leakage_ratio"] == 0.0
    assert (await get(node, "/metrics/flows", bob))[0] == 403
    status, empty = await get(
        node, "/metrics/flows?since=2001-01-01T00:00:00Z&until=2001-02-01T00:00:00Z", steward
    )
    assert empty["internal"] == {"count": 0, "hours": 0.0}
    assert empty["leakage_ratio"] == 0.0
    assert empty["by_community"] == []


async def test_exchanges_show_the_display_names_members_chose(node: NodeHandle) -> None:
    ada, bob = await node.login("ada"), await node.login("bob")
    resp = await node.client.patch("/api/v1/me", json={"display_name": "Ada L."}, headers=ada)
    assert resp.status == 200, await resp.text()
    resp = await node.client.patch("/api/v1/me", json={"display_name": "Bob B."}, headers=bob)
    assert resp.status == 200, await resp.text()
    drill = await listing(node, ada)
    _, exchange = await post(node, "/exchanges", bob, {"listing": drill["id"]})
    assert exchange["provider"]["name"] == "Ada L."
    assert exchange["receiver"]["name"] == "Bob B."
    assert exchange["other_party_name"] == "Ada L."
    _, seen_by_ada = await get(node, f"/exchanges/{exchange['id']}", ada)
    assert seen_by_ada["other_party_name"] == "Bob B."
    await post(node, f"/exchanges/{exchange['id']}/messages", bob, {"text": "Saturday?"})
    _, thread = await get(node, f"/exchanges/{exchange['id']}/messages", ada)
    assert [(m["author"], m["author_name"]) for m in thread["items"]] == [
        ("bob@tools.test", "Bob B.")
    ]


async def test_members_read_their_own_notifications_newest_first(node: NodeHandle) -> None:
    ada, bob = await node.login("ada"), await node.login("bob")
    steward = await node.login("stew", "steward")
    drill = await listing(node, ada)
    _, exchange = await post(node, "/exchanges", bob, {"listing": drill["id"], "hours": 1})
    status, mine = await get(node, "/me/notifications", ada)
    assert status == 200
    assert mine["unread"] == 1
    [requested] = mine["items"]
    assert (requested["kind"], requested["exchange_id"], requested["read"]) == (
        "exchange_requested",
        exchange["id"],
        False,
    )
    assert "Cordless drill" in requested["text"]
    nothing = {"items": [], "unread": 0, "next": None}
    assert (await get(node, "/me/notifications", bob))[1] == nothing
    # Members' notices are their own, not the stewards' list.
    assert (await get(node, "/notifications", steward))[1]["items"] == []

    await post(node, f"/exchanges/{exchange['id']}/accept", ada)
    await post(node, f"/exchanges/{exchange['id']}/messages", ada, {"text": "Ten o'clock?"})
    status, first = await get(node, "/me/notifications?limit=1", bob)
    assert first["unread"] == 2
    assert [n["kind"] for n in first["items"]] == ["exchange_message"]
    assert first["next"]
    _, rest = await get(node, f"/me/notifications?limit=1&cursor={first['next']}", bob)
    assert [n["kind"] for n in rest["items"]] == ["exchange_answered"]
    assert rest["next"] is None

    # Opening the exchange marks its notices read, and only the reader's.
    await post(node, f"/exchanges/{exchange['id']}/messages", bob, {"text": "Yes, thanks"})
    assert (await get(node, f"/exchanges/{exchange['id']}", bob))[0] == 200
    _, after = await get(node, "/me/notifications", bob)
    assert after["unread"] == 0 and all(n["read"] for n in after["items"])
    _, adas = await get(node, "/me/notifications", ada)
    assert adas["unread"] == 1
    assert [(n["kind"], n["read"]) for n in adas["items"]] == [
        ("exchange_message", False),
        ("exchange_requested", True),  # answering it read it
    ]

    resp = await node.client.post("/api/v1/me/notifications/read", headers=ada)
    assert resp.status == 204
    assert (await get(node, "/me/notifications", ada))[1]["unread"] == 0
    assert (await get(node, "/me/notifications", {}))[0] == 401
    assert (await get(node, "/me/notifications?cursor=nonsense", ada))[0] == 400
