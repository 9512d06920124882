"""People through the API: invitations, the member list, deactivation, password links,
profiles, and the poster's name on listings. Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select, update

from node.appkeys import SESSIONS
from storage.models import Invitation, Member, utcnow
from tests.conftest import PASSWORD, NodeHandle

NEW_PASSWORD = "a much better passphrase"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def works(node: NodeHandle, token: str) -> bool:
    resp = await node.client.get("/api/v1/me", headers=bearer(token))
    assert resp.status in (200, 401)
    return resp.status == 200


async def member_count(node: NodeHandle) -> int:
    async with node.client.app[SESSIONS]() as session:
        return int((await session.execute(select(func.count(Member.id)))).scalar_one())


async def invite(node: NodeHandle, steward: dict[str, str], **body: Any) -> dict[str, Any]:
    resp = await node.client.post("/api/v1/invites", json=body, headers=steward)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def register(node: NodeHandle, token: str, username: str, **extra: Any) -> Any:
    body = {"invite": token, "username": username, "password": PASSWORD, **extra}
    return await node.client.post("/api/v1/auth/register", json=body)


async def invites_by_id(node: NodeHandle, steward: dict[str, str]) -> dict[str, dict[str, Any]]:
    resp = await node.client.get("/api/v1/invites", headers=steward)
    assert resp.status == 200
    return {item["id"]: item for item in (await resp.json())["items"]}


async def test_an_invitation_lets_one_person_join_once(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    issued = await invite(node, steward)
    assert issued["url"] == f"http://tools.test/join/{issued['token']}"
    assert (await invites_by_id(node, steward))[issued["id"]]["state"] == "unused"

    joined = await register(node, issued["token"], "Newcomer", display_name="  Nia  New ")
    assert joined.status == 201, await joined.text()
    assert (await joined.json())["username"] == "newcomer"
    assert (await joined.json())["display_name"] == "Nia New"
    assert (await joined.json())["role"] == "member"
    listed = (await invites_by_id(node, steward))[issued["id"]]
    assert (listed["state"], listed["used_by"], listed["created_by"]) == (
        "used",
        "newcomer",
        "stella",
    )
    assert listed["used_at"] is not None
    assert "token" not in listed and issued["token"] not in str(listed)
    assert await node.token("newcomer")

    before = await member_count(node)
    again = await register(node, issued["token"], "second")
    assert again.status == 400
    assert await member_count(node) == before


async def test_a_steward_invitation_makes_a_steward(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    issued = await invite(node, steward, role="steward", expires_in_hours=2)
    assert (await register(node, issued["token"], "sam")).status == 201
    members = await node.client.get("/api/v1/members?q=sam", headers=steward)
    assert [(m["username"], m["role"]) for m in (await members.json())["items"]] == [
        ("sam", "steward")
    ]


async def test_revoked_expired_and_unknown_invitations_create_nothing(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    revoked, expired = await invite(node, steward), await invite(node, steward)
    by_token = await node.client.delete(f"/api/v1/invites/{revoked['token']}", headers=steward)
    assert by_token.status == 204
    async with node.client.app[SESSIONS]() as session:
        await session.execute(
            update(Invitation)
            .where(Invitation.id == expired["id"])
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
        await session.commit()
    before = await member_count(node)
    for token in (revoked["token"], expired["token"], "no-such-invitation"):
        resp = await register(node, token, "hopeful")
        assert resp.status == 400, token
        assert (await resp.json())["error"]["code"] == "bad_request"
    assert await member_count(node) == before
    states = await invites_by_id(node, steward)
    assert states[revoked["id"]]["state"] == "revoked"
    assert states[revoked["id"]]["revoked_at"] is not None
    assert states[expired["id"]]["state"] == "expired"


async def test_revoking_by_id_and_what_cannot_be_revoked(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    unused, used = await invite(node, steward), await invite(node, steward)
    assert (await register(node, used["token"], "ursula")).status == 201
    by_id = await node.client.delete(f"/api/v1/invites/{unused['id']}", headers=steward)
    assert by_id.status == 204
    twice = await node.client.delete(f"/api/v1/invites/{unused['id']}", headers=steward)
    assert twice.status == 204
    refused = await node.client.delete(f"/api/v1/invites/{used['id']}", headers=steward)
    assert refused.status == 409
    assert (await invites_by_id(node, steward))[used["id"]]["state"] == "used"
    missing = await node.client.delete("/api/v1/invites/nothing-like-it", headers=steward)
    assert missing.status == 404


async def test_registration_keeps_the_invitation_when_refused(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    issued = await invite(node, steward)
    short = await node.client.post(
        "/api/v1/auth/register",
        json={"invite": issued["token"], "username": "pat", "password": "short"},
    )
    assert short.status == 422
    bad_name = await register(node, issued["token"], "no spaces!")
    assert bad_name.status == 422
    taken = await register(node, issued["token"], "STELLA")
    assert taken.status == 409
    assert (await invites_by_id(node, steward))[issued["id"]]["state"] == "unused"
    assert (await register(node, issued["token"], "pat")).status == 201


async def test_two_people_racing_for_one_invitation_make_one_member(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    issued = await invite(node, steward)
    before = await member_count(node)
    answers = await asyncio.gather(
        *(register(node, issued["token"], f"racer{i}") for i in range(4))
    )
    assert sorted(resp.status for resp in answers) == [201, 400, 400, 400]
    assert await member_count(node) == before + 1


async def test_only_stewards_handle_invitations_and_members(node: NodeHandle) -> None:
    member = await node.login("max")
    for method, path in [
        ("POST", "/api/v1/invites"),
        ("GET", "/api/v1/invites"),
        ("GET", "/api/v1/members"),
        ("PATCH", "/api/v1/members/max"),
        ("POST", "/api/v1/members/max/password-reset"),
    ]:
        resp = await node.client.request(method, path, json={}, headers=member)
        assert resp.status == 403, (method, path)


async def test_members_are_searched_and_paged(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    for name in ("alice", "albert", "bob", "carol_a"):
        await node.add_member(name)
    seen: list[str] = []
    cursor = ""
    while True:
        resp = await node.client.get(f"/api/v1/members?limit=2{cursor}", headers=steward)
        body = await resp.json()
        seen += [item["username"] for item in body["items"]]
        if body["next"] is None:
            break
        cursor = f"&cursor={body['next']}"
    assert seen == ["albert", "alice", "bob", "carol_a", "stella"]
    item = (await (await node.client.get("/api/v1/members?q=BOB", headers=steward)).json())[
        "items"
    ][0]
    assert set(item) == {"username", "display_name", "role", "active", "created_at"}
    underscore = await node.client.get("/api/v1/members?q=_", headers=steward)
    assert [m["username"] for m in (await underscore.json())["items"]] == ["carol_a"]
    bad = await node.client.get("/api/v1/members?cursor=garbage", headers=steward)
    assert bad.status == 400


async def test_deactivation_cuts_tokens_and_sign_in_at_once(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    await node.add_member("max")
    token = await node.token("max")
    listing = await node.client.post(
        "/api/v1/listings",
        json={"kind": "offer", "title": "Ladder", "visibility": "public"},
        headers=bearer(token),
    )
    listing_id = (await listing.json())["id"]

    resp = await node.client.patch("/api/v1/members/max", json={"active": False}, headers=steward)
    assert resp.status == 200 and (await resp.json())["active"] is False
    assert not await works(node, token)
    refused = await node.client.post(
        "/api/v1/auth/token", json={"username": "max", "password": PASSWORD}
    )
    assert refused.status == 401
    closed = await node.client.get(f"/api/v1/listings/{listing_id}", headers=steward)
    assert (await closed.json())["status"] == "closed"

    back = await node.client.patch("/api/v1/members/max", json={"active": True}, headers=steward)
    assert (await back.json())["active"] is True
    assert await works(node, await node.token("max"))
    still = await node.client.get(f"/api/v1/listings/{listing_id}", headers=steward)
    assert (await still.json())["status"] == "closed"


async def test_the_last_active_steward_stays(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    for change in ({"role": "member"}, {"active": False}):
        resp = await node.client.patch("/api/v1/members/stella", json=change, headers=steward)
        assert resp.status == 409, change
    await node.add_member("sam", "steward")
    sam = bearer(await node.token("sam"))
    demoted = await node.client.patch(
        "/api/v1/members/sam", json={"role": "member"}, headers=steward
    )
    assert demoted.status == 200
    assert (await node.client.get("/api/v1/members", headers=sam)).status == 403
    await node.client.patch("/api/v1/members/sam", json={"role": "steward"}, headers=steward)
    gone = await node.client.patch("/api/v1/members/stella", json={"active": False}, headers=sam)
    assert gone.status == 200
    last = await node.client.patch("/api/v1/members/sam", json={"role": "member"}, headers=sam)
    assert last.status == 409


async def test_bad_member_changes_are_refused(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    for body in ({"role": "king"}, {"active": "no"}, {"colour": "red"}):
        resp = await node.client.patch("/api/v1/members/stella", json=body, headers=steward)
        assert resp.status == 422, body
    missing = await node.client.patch("/api/v1/members/nobody", json={}, headers=steward)
    assert missing.status == 404


async def test_profile_is_read_and_changed_within_limits(node: NodeHandle) -> None:
    me = await node.login("max")
    resp = await node.client.patch(
        "/api/v1/me", json={"display_name": "Max  Power", "bio": "I lend ladders."}, headers=me
    )
    assert resp.status == 200
    body = await (await node.client.get("/api/v1/me", headers=me)).json()
    assert (body["display_name"], body["bio"], body["username"]) == (
        "Max Power",
        "I lend ladders.",
        "max",
    )
    for bad in ({"display_name": "x" * 101}, {"bio": "y" * 1001}, {"display_name": "a\x07b"}):
        refused = await node.client.patch("/api/v1/me", json=bad, headers=me)
        assert refused.status == 422, bad
    same = await (await node.client.get("/api/v1/me", headers=me)).json()
    assert same["display_name"] == "Max Power"


async def test_password_change_keeps_only_the_token_it_was_made_with(node: NodeHandle) -> None:
    await node.add_member("max")
    current, other = await node.token("max"), await node.token("max")
    resp = await node.client.post(
        "/api/v1/auth/password",
        json={"current": PASSWORD, "new": NEW_PASSWORD},
        headers=bearer(current),
    )
    assert resp.status == 204
    assert await works(node, current)
    assert not await works(node, other)
    short = await node.client.post(
        "/api/v1/auth/password",
        json={"current": NEW_PASSWORD, "new": "short"},
        headers=bearer(current),
    )
    assert short.status == 422


async def test_signing_out_everywhere_else(node: NodeHandle) -> None:
    await node.add_member("max")
    current, first, second = [await node.token("max") for _ in range(3)]
    resp = await node.client.delete("/api/v1/auth/tokens", headers=bearer(current))
    assert resp.status == 204
    assert await works(node, current)
    assert not await works(node, first) and not await works(node, second)


async def test_a_password_link_works_once_and_ends_every_session(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    await node.add_member("max")
    old = await node.token("max")
    issued = await node.client.post("/api/v1/members/max/password-reset", headers=steward)
    assert issued.status == 201
    link = await issued.json()
    assert link["url"] == f"http://tools.test/reset/{link['token']}"

    short = await node.client.post(
        "/api/v1/auth/reset", json={"token": link["token"], "password": "short"}
    )
    assert short.status == 422
    resp = await node.client.post(
        "/api/v1/auth/reset", json={"token": link["token"], "password": NEW_PASSWORD}
    )
    assert resp.status == 204
    assert not await works(node, old)
    again = await node.client.post(
        "/api/v1/auth/reset", json={"token": link["token"], "password": "yet another one"}
    )
    assert again.status == 400
    signed_in = await node.client.post(
        "/api/v1/auth/token", json={"username": "max", "password": NEW_PASSWORD}
    )
    assert signed_in.status == 200


async def test_a_new_password_link_replaces_the_old_one(node: NodeHandle) -> None:
    steward = await node.login("stella", "steward")
    await node.add_member("max")
    first = await (
        await node.client.post("/api/v1/members/max/password-reset", headers=steward)
    ).json()
    await node.client.post("/api/v1/members/max/password-reset", headers=steward)
    stale = await node.client.post(
        "/api/v1/auth/reset", json={"token": first["token"], "password": NEW_PASSWORD}
    )
    assert stale.status == 400


async def test_listings_carry_the_posters_display_name(node: NodeHandle) -> None:
    me = await node.login("max")
    made = await node.client.post(
        "/api/v1/listings", json={"kind": "need", "title": "A wheelbarrow"}, headers=me
    )
    assert (await made.json())["author"] == {"name": "max"}
    await node.client.patch("/api/v1/me", json={"display_name": "Max P."}, headers=me)
    shown = await node.client.get(f"/api/v1/listings/{(await made.json())['id']}", headers=me)
    assert (await shown.json())["author"] == {"name": "Max P."}
