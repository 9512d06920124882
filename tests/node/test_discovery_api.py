"""Browsing the network and the community directory, on SQLite and PostgreSQL.

What a member may see is the visibility rule applied across the whole cache:
our own community's listings, public listings of every known community, and
partner listings only of active partners, never anything of a blocked domain.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from node.appkeys import SESSIONS
from node.services.communities import create_local_community
from storage.models import (
    Community,
    CommunityPartnership,
    Delivery,
    Listing,
    RemoteListing,
    utcnow,
)
from storage.repositories import BlockRepository, CommunityRepository
from storage.repositories.follows import FollowRepository
from storage.states import FollowState
from tests.conftest import PASSWORD, NodeHandle

LONDON = (51.5072, -0.1276)
FAR_NORTH = (54.565, -0.1276)  # 340 km due north of London
NEAR = (51.52, -0.10)  # about 2.5 km away


async def _remote(
    node: NodeHandle,
    slug: str,
    *,
    location: tuple[float, float] | None = None,
    discoverable: bool = True,
    actor_type: str = "Group",
    offers: int = 0,
    needs: int = 0,
    host: str | None = None,
) -> Community:
    host = host or f"{slug}.test"
    ap_id = f"http://{host}/c/{slug}"
    async with node.client.app[SESSIONS]() as db:
        community = Community(
            ap_id=ap_id,
            slug=slug,
            host=host,
            name=f"{slug.title()} Commons",
            description=f"The {slug} sharing circle",
            actor_type=actor_type,
            base_url=f"http://{host}",
            inbox_url=f"{ap_id}/inbox",
            latitude=location[0] if location else None,
            longitude=location[1] if location else None,
            public_offer_count=offers,
            public_need_count=needs,
            is_discoverable=discoverable,
            fetched_at=utcnow(),
        )
        db.add(community)
        await db.commit()
        return community


async def _cached(
    node: NodeHandle,
    origin: Community,
    title: str,
    *,
    audience: str = "public",
    kind: str = "offer",
    category: str = "",
    description: str = "",
    location: tuple[float, float] | None = None,
    age_minutes: int = 0,
    published: datetime | None = None,
) -> None:
    async with node.client.app[SESSIONS]() as db:
        db.add(
            RemoteListing(
                ap_id=f"{origin.ap_id}/listings/{title.replace(' ', '-').lower()}",
                origin_community_id=origin.id,
                audience=audience,
                kind=kind,
                title=title,
                description=description,
                category=category,
                latitude=location[0] if location else None,
                longitude=location[1] if location else None,
                published_at=published or utcnow() - timedelta(minutes=age_minutes),
            )
        )
        await db.commit()


async def _partner(node: NodeHandle, remote: Community, state: str = "active") -> None:
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug("tools")
        assert local is not None
        db.add(
            CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=remote.id,
                state=state,
                initiated_by="us",
                follow_activity_id=f"{local.ap_id}/activities/{remote.slug}",
            )
        )
        await db.commit()


async def _post(node: NodeHandle, headers: dict[str, str], title: str, **fields: Any) -> None:
    body = {"kind": "offer", "title": title, **fields}
    resp = await node.client.post("/api/v1/listings", json=body, headers=headers)
    assert resp.status == 201, await resp.text()


async def _browse(node: NodeHandle, headers: dict[str, str], query: str = "") -> list[Any]:
    """Every item across all pages, following `next`, 2 a page to exercise the cursors."""
    items: list[Any] = []
    cursor = None
    while True:
        params = f"{query}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await node.client.get(f"/api/v1/discovery/browse?{params}", headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items


async def _titles(node: NodeHandle, headers: dict[str, str], query: str = "") -> list[str]:
    return [item["title"] for item in await _browse(node, headers, query)]


async def test_browse_shows_what_the_caller_may_see_and_nothing_else(node: NodeHandle) -> None:
    me = await node.login("ada")
    await _post(node, me, "Our own secret ladder")  # community-only, but ours
    await _post(node, me, "Our public drill", visibility="public")
    partner, stranger = await _remote(node, "birch"), await _remote(node, "cedar")
    await _partner(node, partner)
    await _cached(node, partner, "Birch public saw")
    await _cached(node, partner, "Birch partners van", audience="partners")
    await _cached(node, stranger, "Cedar public rake")
    await _cached(node, stranger, "Cedar partners trailer", audience="partners")
    async with node.client.app[SESSIONS]() as db:
        sibling = await create_local_community(
            db, node.config, slug="annex", name="Annex", location=NEAR
        )
        db.add_all(
            [
                Listing(
                    ap_id=f"{sibling.ap_id}/listings/{n}",
                    community_id=sibling.id,
                    kind="offer",
                    title=title,
                    visibility=visibility,
                    is_public=visibility == "public",
                )
                for n, (title, visibility) in enumerate(
                    [("Annex community kettle", "community"), ("Annex public tent", "public")]
                )
            ]
        )
        await db.commit()

    titles = set(await _titles(node, me))
    assert titles == {
        "Our own secret ladder",
        "Our public drill",
        "Birch public saw",
        "Birch partners van",
        "Cedar public rake",
        "Annex public tent",
    }

    async with node.client.app[SESSIONS]() as db:
        await BlockRepository(db).add("birch.test")
        await db.commit()
    titles = set(await _titles(node, me))
    assert not {"Birch public saw", "Birch partners van"} & titles
    assert "Cedar public rake" in titles


async def test_browse_filters_alone_and_combined(node: NodeHandle) -> None:
    me = await node.login("ada")
    await _post(node, me, "Cordless drill", category="tools", description="18V with two batteries")
    await _post(node, me, "Need a ladder", kind="need", category="tools")
    birch = await _remote(node, "birch", location=FAR_NORTH)
    await _cached(node, birch, "Birch drill press", category="tools", age_minutes=5)
    await _cached(node, birch, "Birch apples", category="food", kind="offer", age_minutes=6)
    await _cached(node, birch, "Birch needs a drill bit", kind="need", category="tools")

    assert set(await _titles(node, me, "q=drill")) == {
        "Cordless drill",
        "Birch drill press",
        "Birch needs a drill bit",
    }
    assert await _titles(node, me, "q=batter") == ["Cordless drill"]  # prefix, description
    assert await _titles(node, me, "q=drill&kind=need") == ["Birch needs a drill bit"]
    assert set(await _titles(node, me, "category=tools&kind=offer")) == {
        "Cordless drill",
        "Birch drill press",
    }
    assert set(await _titles(node, me, "community=birch@birch.test")) == {
        "Birch drill press",
        "Birch apples",
        "Birch needs a drill bit",
    }
    assert set(await _titles(node, me, "origin=local")) == {"Cordless drill", "Need a ladder"}
    assert await _titles(node, me, "origin=public&category=food") == ["Birch apples"]
    assert await _titles(node, me, "origin=partner") == []
    assert await _titles(node, me, "q=zebra") == []
    # Operators and quotes are words here, not syntax.
    assert await _titles(node, me, 'q="drill" OR NOT*') == []
    assert set(await _titles(node, me, "q=drill%20press%22")) == {"Birch drill press"}


async def test_listings_posted_at_the_same_moment_page_exactly_once_with_or_without_words(
    node: NodeHandle,
) -> None:
    me = await node.login("ada")
    birch = await _remote(node, "birch")
    moment = utcnow().replace(microsecond=250_000)
    titles = [f"Tent {n}" for n in range(7)]
    for title in titles:  # one instant, as a whole-second `published` from a peer gives
        await _cached(node, birch, title, published=moment)
    await _cached(node, birch, "Tent older", published=moment - timedelta(milliseconds=1))
    await _cached(node, birch, "Tent newer", published=moment + timedelta(milliseconds=1))
    expected = ["Tent newer", *sorted(titles, reverse=True), "Tent older"]  # ties: by id
    assert await _titles(node, me, "q=tent") == expected
    assert await _titles(node, me, "") == expected


async def test_browse_by_distance_uses_the_community_place_when_a_listing_has_none(
    node: NodeHandle,
) -> None:
    me = await node.login("ada")
    await _post(node, me, "Ladder at home")  # no place: the community's, London
    far = await _remote(node, "birch", location=FAR_NORTH)
    await _cached(node, far, "Far tent")  # no place: Birch's, 340 km away
    await _cached(node, far, "Far tent pitched nearby", location=NEAR)
    nowhere = await _remote(node, "cedar")
    await _cached(node, nowhere, "Placeless rake")

    point = f"lat={LONDON[0]}&lon={LONDON[1]}"
    assert set(await _titles(node, me, f"{point}&radius_km=50")) == {
        "Ladder at home",
        "Far tent pitched nearby",
    }
    inside = await _browse(node, me, f"{point}&radius_km=500&sort=distance")
    assert [i["title"] for i in inside] == ["Ladder at home", "Far tent pitched nearby", "Far tent"]
    distances = [i["distance_km"] for i in inside]
    assert distances[0] < 1 and 2 < distances[1] < 3 and 335 < distances[2] < 345
    everything = await _browse(node, me, f"{point}&sort=distance")
    assert everything[-1]["title"] == "Placeless rake"
    assert everything[-1]["distance_km"] is None
    plain = await _browse(node, me)
    assert all(item["distance_km"] is None for item in plain)


async def test_relevance_puts_the_better_match_first_and_pages_exactly(node: NodeHandle) -> None:
    me = await node.login("ada")
    birch = await _remote(node, "birch")
    await _cached(node, birch, "Bike pump", description="for a bike, any bike: bike bike")
    for n in range(5):
        await _cached(node, birch, f"Spare part {n}", description="fits a bike", age_minutes=n + 1)
    ranked = await _titles(node, me, "q=bike&sort=relevance")
    assert ranked[0] == "Bike pump"
    assert sorted(ranked) == sorted(["Bike pump", *(f"Spare part {n}" for n in range(5))])
    newest = await _titles(node, me, "q=bike&sort=newest")
    assert newest[:2] == ["Bike pump", "Spare part 0"]


async def test_browse_refuses_bad_input_with_4xx(node: NodeHandle) -> None:
    me = await node.login("ada")
    for query, status in [
        ("lat=51", 422),
        ("radius_km=5", 422),
        ("lat=91&lon=0", 422),
        ("lat=51&lon=0&radius_km=-1", 422),
        ("sort=sideways", 422),
        ("origin=elsewhere", 422),
        ("community=nohandle", 422),
        ("cursor=not-a-cursor", 400),
        ("limit=0", 422),
    ]:
        resp = await node.client.get(f"/api/v1/discovery/browse?{query}", headers=me)
        assert resp.status == status, (query, await resp.text())
    # A cursor made for another sort is refused, not compared with a distance.
    await _post(node, me, "One")
    await _post(node, me, "Two")
    first = await node.client.get("/api/v1/discovery/browse?limit=1", headers=me)
    cursor = (await first.json())["next"]
    resp = await node.client.get(
        f"/api/v1/discovery/browse?lat=51&lon=0&sort=distance&cursor={cursor}", headers=me
    )
    assert resp.status == 400
    assert (await node.client.get("/api/v1/discovery/browse")).status == 401


async def _cards(node: NodeHandle, headers: dict[str, str], query: str = "") -> list[Any]:
    items: list[Any] = []
    cursor = None
    while True:
        params = f"{query}&limit=2" + (f"&cursor={cursor}" if cursor else "")
        resp = await node.client.get(f"/api/v1/discovery/communities?{params}", headers=headers)
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        items += body["items"]
        cursor = body["next"]
        if cursor is None:
            return items


async def test_directory_lists_known_communities_with_public_counts_and_state(
    node: NodeHandle,
) -> None:
    me = await node.login("ada")
    await _post(node, me, "Public offer", visibility="public")
    await _post(node, me, "Public need", kind="need", visibility="public")
    await _post(node, me, "Partners offer", visibility="partners")
    await _post(node, me, "Community offer")
    birch = await _remote(node, "birch", location=FAR_NORTH, offers=4, needs=2)
    await _partner(node, birch, "pending")
    await _remote(node, "cedar", location=NEAR)
    await _remote(node, "hidden", discoverable=False)
    await _remote(node, "alice", actor_type="Person")

    cards = {card["handle"]: card for card in await _cards(node, me)}
    assert set(cards) == {"tools@tools.test", "birch@birch.test", "cedar@cedar.test"}
    own = cards["tools@tools.test"]
    assert (own["public_offer_count"], own["public_need_count"]) == (1, 1)
    assert own["is_local"] is True and own["partnership"] is None
    assert cards["birch@birch.test"]["partnership"] == "pending"
    assert (
        cards["birch@birch.test"]["public_offer_count"],
        cards["birch@birch.test"]["public_need_count"],
    ) == (4, 2)
    assert cards["cedar@cedar.test"]["location"] == {"lat": NEAR[0], "lon": NEAR[1]}

    point = f"lat={LONDON[0]}&lon={LONDON[1]}"
    near = await _cards(node, me, f"{point}&radius_km=50")
    assert [c["handle"] for c in near] == ["tools@tools.test", "cedar@cedar.test"]
    wide = await _cards(node, me, f"{point}&radius_km=500")
    assert [c["handle"] for c in wide][-1] == "birch@birch.test"
    assert 335 < wide[-1]["distance_km"] < 345
    assert [c["handle"] for c in await _cards(node, me, "q=CEDAR")] == ["cedar@cedar.test"]
    assert [c["handle"] for c in await _cards(node, me, "q=circle%25")] == []


async def test_a_community_that_opts_out_is_left_out_for_others(node: NodeHandle) -> None:
    steward = await node.login("stew", "steward")
    member = await node.login("ada")
    resp = await node.client.patch(
        "/api/v1/community", json={"discoverable": False}, headers=member
    )
    assert resp.status == 403
    resp = await node.client.patch(
        "/api/v1/community", json={"discoverable": False}, headers=steward
    )
    assert resp.status == 200 and (await resp.json())["discoverable"] is False
    assert (
        await node.client.patch("/api/v1/community", json={"discoverable": "no"}, headers=steward)
    ).status == 422
    # Its own members still see it; another community on the node does not.
    assert "tools@tools.test" in {c["handle"] for c in await _cards(node, member)}
    async with node.client.app[SESSIONS]() as db:
        await create_local_community(db, node.config, slug="annex", name="Annex")
        await db.commit()
    await node.add_member("bea", community="annex")
    resp = await node.client.post(
        "/api/v1/auth/token", json={"username": "bea", "password": PASSWORD, "community": "annex"}
    )
    annex = {"Authorization": f"Bearer {(await resp.json())['token']}"}
    assert {c["handle"] for c in await _cards(node, annex)} == {"annex@tools.test"}
    actor = await node.client.get("/c/tools", headers={"Accept": "application/activity+json"})
    assert (await actor.json())["discoverable"] is False
    info = await (await node.client.get("/nodeinfo/2.1")).json()
    assert [c["handle"] for c in info["metadata"]["communities"]] == ["annex@tools.test"]


async def test_leaving_or_rejoining_directories_tells_followers_and_partners(
    node: NodeHandle,
) -> None:
    steward = await node.login("stew", "steward")
    partner = await _remote(node, "birch")
    await _partner(node, partner)
    stranger = await _remote(node, "cedar")  # known, neither following nor a partner
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug("tools")
        assert local is not None
        await FollowRepository(db).upsert(
            direction="in",
            local_community_id=local.id,
            remote_actor="http://follower.test/users/ada",
            follow_activity_id="http://follower.test/follows/1",
            state=FollowState.ACTIVE,
            remote_inbox="http://follower.test/users/ada/inbox",
            remote_shared_inbox="http://follower.test/inbox",
        )
        await db.commit()

    async def updates() -> list[tuple[str, dict[str, Any]]]:
        async with node.client.app[SESSIONS]() as db:
            rows = (await db.scalars(select(Delivery).order_by(Delivery.id))).all()
        sent = [(row.target_inbox, json.loads(row.body)) for row in rows]
        return [(inbox, body) for inbox, body in sent if body["type"] == "Update"]

    for value in (False, False, True):
        resp = await node.client.patch(
            "/api/v1/community", json={"discoverable": value}, headers=steward
        )
        assert resp.status == 200
    sent = await updates()
    # One Update each time the flag changed (not when set to what it was), to each of them.
    assert sorted(inbox for inbox, _ in sent) == sorted(
        [partner.inbox_url, "http://follower.test/inbox"] * 2
    )
    assert stranger.inbox_url not in {inbox for inbox, _ in sent}
    flags = [body["object"]["discoverable"] for _, body in sent]
    assert sorted(flags) == [False, False, True, True]
    for _, body in sent:
        assert body["actor"] == body["object"]["id"] == "http://tools.test/c/tools"
        assert body["object"]["type"] == "Group" and "@context" not in body["object"]


async def test_categories_have_defaults_and_stewards_add_to_them(node: NodeHandle) -> None:
    steward = await node.login("stew", "steward")
    member = await node.login("ada")
    resp = await node.client.get("/api/v1/categories", headers=member)
    slugs = [c["slug"] for c in (await resp.json())["items"]]
    assert {"tools", "kitchen", "garden", "bikes", "skills", "food"} <= set(slugs)
    new = {"slug": "boats", "label": "Boats and kayaks"}
    assert (await node.client.post("/api/v1/categories", json=new, headers=member)).status == 403
    resp = await node.client.post("/api/v1/categories", json=new, headers=steward)
    assert resp.status == 201 and await resp.json() == new
    assert (await node.client.post("/api/v1/categories", json=new, headers=steward)).status == 409
    dup_default = {"slug": "tools", "label": "More tools"}
    assert (
        await node.client.post("/api/v1/categories", json=dup_default, headers=steward)
    ).status == 409
    for bad in ("Boats!", "-x", "a b", "x" * 65, ""):
        resp = await node.client.post(
            "/api/v1/categories", json={"slug": bad, "label": "L"}, headers=steward
        )
        assert resp.status == 422, bad
    resp = await node.client.get("/api/v1/categories", headers=member)
    items = (await resp.json())["items"]
    assert items[-1] == new and [c["slug"] for c in items].count("boats") == 1
    # Any slug is still accepted on a listing.
    await _post(node, member, "Odd thing", category="unlisted-slug")
