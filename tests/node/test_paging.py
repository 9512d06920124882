"""Every list is keyset-paged: each item exactly once, even while items are added;
and what the mirror shows depends on which local community asks.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from node.appkeys import SESSIONS
from node.protocol.partnerships import end_partnership
from node.services.communities import create_local_community
from storage.models import (
    BlockedDomain,
    Community,
    CommunityPartnership,
    Job,
    Notification,
    RemoteListing,
    utcnow,
)
from storage.repositories import CommunityRepository
from storage.repositories.partnerships import PartnershipRepository
from tests.conftest import PASSWORD, NodeHandle

ORIGIN = "http://birch.test/c/birch"


async def _origin(node: NodeHandle) -> Community:
    async with node.client.app[SESSIONS]() as db:
        community = Community(
            ap_id=ORIGIN,
            slug="birch",
            host="birch.test",
            name="Birch",
            base_url="http://birch.test",
            inbox_url=f"{ORIGIN}/inbox",
            fetched_at=utcnow(),
        )
        db.add(community)
        await db.commit()
        return community


async def _mirror(node: NodeHandle, origin: Community, title: str, audience: str, age: int) -> None:
    async with node.client.app[SESSIONS]() as db:
        db.add(
            RemoteListing(
                ap_id=f"{ORIGIN}/listings/{title.replace(' ', '-')}",
                origin_community_id=origin.id,
                audience=audience,
                kind="offer",
                title=title,
                published_at=utcnow() - timedelta(minutes=age),
            )
        )
        await db.commit()


async def _partner(node: NodeHandle, local_slug: str, origin: Community) -> None:
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug(local_slug)
        assert local is not None
        db.add(
            CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=origin.id,
                state="active",
                initiated_by="us",
                follow_activity_id=f"{local.ap_id}/activities/p",
            )
        )
        await db.commit()


async def _annex_member(node: NodeHandle) -> dict[str, str]:
    """A member of the node's second community, `annex`, signed in."""
    await node.add_member("bea", community="annex")
    resp = await node.client.post(
        "/api/v1/auth/token",
        json={"username": "bea", "password": PASSWORD, "community": "annex"},
    )
    return {"Authorization": f"Bearer {(await resp.json())['token']}"}


async def _walk(node: NodeHandle, headers: dict[str, str], query: str) -> list[str]:
    """Every page, following `next`; posts a new listing between pages to stir things up."""
    titles: list[str] = []
    cursor: str | None = None
    for page in range(100):
        url = f"/api/v1/listings?{query}" + (f"&cursor={cursor}" if cursor else "")
        resp = await node.client.get(url, headers=headers)
        assert resp.status == 200, await resp.text()
        body: dict[str, Any] = await resp.json()
        titles += [item["title"] for item in body["items"]]
        created = await node.client.post(
            "/api/v1/listings",
            json={"kind": "need", "title": f"Added while paging {page}"},
            headers=headers,
        )
        assert created.status == 201
        cursor = body["next"]
        if cursor is None:
            return titles
    raise AssertionError("paging did not end")


async def test_walking_all_pages_yields_each_listing_once_while_listings_are_added(
    node: NodeHandle,
) -> None:
    headers = await node.login("ada")
    for n in range(7):
        resp = await node.client.post(
            "/api/v1/listings", json={"kind": "offer", "title": f"Local {n}"}, headers=headers
        )
        assert resp.status == 201
    origin = await _origin(node)
    await _partner(node, "tools", origin)
    for n in range(6):
        await _mirror(node, origin, f"Public {n}", "public", age=n)
        await _mirror(node, origin, f"Shared {n}", "partners", age=n)

    titles = await _walk(node, headers, "limit=4&include_public=true&include_partners=true")
    expected = {f"Local {n}" for n in range(7)} | {f"Public {n}" for n in range(6)}
    expected |= {f"Shared {n}" for n in range(6)}
    assert len(titles) == len(set(titles))  # nothing twice
    assert expected <= set(titles)  # nothing missed
    assert all(t.startswith("Added while paging") for t in set(titles) - expected)


async def test_a_bad_cursor_or_limit_is_a_client_error(node: NodeHandle) -> None:
    headers = await node.login("ada")
    for query, status in [
        ("cursor=not-a-cursor", 400),
        ("cursor=WyJ0IiwgMV0", 400),
        ("limit=0", 422),
        ("limit=201", 422),
    ]:
        resp = await node.client.get(f"/api/v1/listings?{query}", headers=headers)
        assert resp.status == status, (query, await resp.text())
        assert (await resp.json())["error"]["code"]


async def test_partner_listings_show_only_to_the_local_community_in_that_partnership(
    node: NodeHandle,
) -> None:
    async with node.client.app[SESSIONS]() as db:
        await create_local_community(db, node.config, slug="annex", name="Annex")
        await db.commit()
    origin = await _origin(node)
    await _partner(node, "tools", origin)
    await _mirror(node, origin, "For partners", "partners", age=1)
    await _mirror(node, origin, "For everyone", "public", age=2)
    tools = await node.login("ada")
    query = "include_public=true&include_partners=true"
    resp = await node.client.get(f"/api/v1/listings?{query}", headers=tools)
    assert {i["title"] for i in (await resp.json())["items"]} == {"For partners", "For everyone"}

    annex = await _annex_member(node)
    resp = await node.client.get(f"/api/v1/listings?{query}", headers=annex)
    assert {i["title"] for i in (await resp.json())["items"]} == {"For everyone"}


async def _walk_plain(
    node: NodeHandle, headers: dict[str, str], path: str, key: str = "id"
) -> list[str]:
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(50):
        url = f"{path}?limit=3" + (f"&cursor={cursor}" if cursor else "")
        resp = await node.client.get(url, headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        ids += [str(item[key]) for item in body["items"]]
        cursor = body["next"]
        if cursor is None:
            return ids
    raise AssertionError("paging did not end")


async def test_partnerships_notifications_and_jobs_page_through_every_item_once(
    node: NodeHandle,
) -> None:
    steward = await node.login("stella", "steward")
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug("tools")
        assert local is not None
        for n in range(7):
            remote = Community(
                ap_id=f"http://r{n}.test/c/r",
                slug="r",
                host=f"r{n}.test",
                name=f"Remote {n}",
                base_url=f"http://r{n}.test",
            )
            db.add(remote)
            await db.flush()
            partnership = CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=remote.id,
                state="pending",
                initiated_by="them",
                follow_activity_id=f"{remote.ap_id}/follow",
            )
            db.add(partnership)
            await db.flush()
            db.add(
                Notification(
                    community_id=local.id,
                    kind="partnership_proposed",
                    text=f"Remote {n} proposes",
                    partnership_id=partnership.id,
                )
            )
            db.add(Job(kind="backfill", community_id=local.id, subject=remote.ap_id))
            db.add(BlockedDomain(domain=f"blocked{n}.test"))
        await db.commit()
    for path, key in [
        ("/api/v1/partnerships", "id"),
        ("/api/v1/notifications", "id"),
        ("/api/v1/jobs", "id"),
        ("/api/v1/federation/blocks", "domain"),
        ("/api/v1/federation/peers", "host"),
    ]:
        ids = await _walk_plain(node, steward, path, key)
        assert len(ids) == len(set(ids)) == 7, path


async def test_one_community_ending_a_partnership_leaves_anothers_partner_listings(
    node: NodeHandle,
) -> None:
    async with node.client.app[SESSIONS]() as db:
        await create_local_community(db, node.config, slug="annex", name="Annex")
        await db.commit()
    origin = await _origin(node)
    await _partner(node, "tools", origin)
    await _partner(node, "annex", origin)
    await _mirror(node, origin, "For partners", "partners", age=1)
    annex = await _annex_member(node)
    tools = await node.login("ada")

    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug("tools")
        assert local is not None
        [ours] = await PartnershipRepository(db).get_active_for_community(local.id)
        await end_partnership(db, ours, "dissolved")
        await db.commit()

    async def titles(headers: dict[str, str]) -> set[str]:
        resp = await node.client.get("/api/v1/listings?include_partners=true", headers=headers)
        return {item["title"] for item in (await resp.json())["items"]}

    assert await titles(tools) == set()
    assert await titles(annex) == {"For partners"}
