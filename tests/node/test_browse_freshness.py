"""Browse and the listings API follow blocks and partnerships from the next request on,
although the block list is kept in memory between requests; on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import insert

from node.appkeys import SESSIONS
from storage.models import BlockedDomain, CommunityPartnership, utcnow
from storage.repositories import CommunityRepository, block_cache
from tests.conftest import NodeHandle
from tests.node.test_discovery_api import _cached, _remote
from tests.node.test_node_operator import add_second_community

SHOWN = ("discovery/browse?limit=50", "listings?include_public=true&include_partners=true")


async def _seen(node: NodeHandle, headers: dict[str, str]) -> list[set[str]]:
    """The titles on the first page of browse and of the listings API, for `headers`."""
    out = []
    for path in SHOWN:
        resp = await node.client.get(f"/api/v1/{path}", headers=headers)
        assert resp.status == 200, await resp.text()
        out.append({item["title"] for item in (await resp.json())["items"]})
    return out


async def _partners(node: NodeHandle, local_slug: str, remote: Any) -> None:
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug(local_slug)
        assert local is not None
        db.add(
            CommunityPartnership(
                local_community_id=local.id,
                remote_community_id=remote.id,
                state="active",
                initiated_by="us",
                follow_activity_id=f"{local.ap_id}/activities/{remote.slug}",
            )
        )
        await db.commit()


async def test_a_block_through_the_api_applies_to_the_next_page_and_so_does_its_removal(
    node: NodeHandle,
) -> None:
    me = await node.login("ada")
    await node.add_member("olive_op", "steward", operator=True)
    operator = {"Authorization": f"Bearer {await node.token('olive_op')}"}
    spam = await _remote(node, "spam", host="spam.example")
    await _cached(node, spam, "Spam public saw")
    assert all("Spam public saw" in titles for titles in await _seen(node, me))

    blocked = await node.client.post(
        "/api/v1/federation/blocks", json={"domain": "spam.example"}, headers=operator
    )
    assert blocked.status == 201
    assert all("Spam public saw" not in titles for titles in await _seen(node, me))

    removed = await node.client.delete("/api/v1/federation/blocks/spam.example", headers=operator)
    assert removed.status == 204
    assert all("Spam public saw" in titles for titles in await _seen(node, me))


async def test_a_block_another_process_wrote_applies_once_the_copy_expires(
    node: NodeHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    me = await node.login("ada")
    spam = await _remote(node, "spam", host="spam.example")
    await _cached(node, spam, "Spam public saw")
    assert all("Spam public saw" in titles for titles in await _seen(node, me))

    async with node.client.app[SESSIONS]() as db:  # as the operator's command line would
        await db.execute(insert(BlockedDomain).values(domain="spam.example", created_at=utcnow()))
        await db.commit()
    later = block_cache.clock() + block_cache.BLOCK_CACHE_SECONDS + 1
    monkeypatch.setattr(block_cache, "clock", lambda: later)
    assert all("Spam public saw" not in titles for titles in await _seen(node, me))


async def test_an_ended_partnership_hides_partner_listings_at_once_though_another_keeps_them(
    node: NodeHandle,
) -> None:
    """The copies stay while another community here is still a partner, so what
    hides them from the community that ended its partnership is the rule itself."""
    steward = await node.login("sue", "steward")
    garden = await add_second_community(node, "garden", "gus")
    birch = await _remote(node, "birch")
    await _partners(node, "tools", birch)
    await _partners(node, "garden", birch)
    await _cached(node, birch, "Birch partners van", audience="partners")
    assert all("Birch partners van" in titles for titles in await _seen(node, steward))

    listed = await node.client.get("/api/v1/partnerships", headers=steward)
    (partnership,) = (await listed.json())["items"]
    ended = await node.client.post(
        f"/api/v1/partnerships/{partnership['id']}/dissolve", headers=steward
    )
    assert ended.status == 200, await ended.text()

    assert all("Birch partners van" not in titles for titles in await _seen(node, steward))
    assert all("Birch partners van" in titles for titles in await _seen(node, garden))
