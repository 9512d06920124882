"""Three real nodes: a node told about one peer learns the network around it, and a
community that opts out of directories drops out of every node's directory."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.support.api import ApiClient, eventually

pytestmark = pytest.mark.e2e


async def _directory(client: ApiClient) -> dict[str, Any]:
    return {
        card["handle"]: card for card in await client.all_items("/api/v1/discovery/communities")
    }


async def test_a_node_told_about_one_peer_discovers_the_peers_of_that_peer(
    cluster: Cluster, http: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COMMONS_DISCOVERY_CRAWL_SPACING_SECONDS", "0")
    monkeypatch.setenv("COMMONS_DISCOVERY_REFRESH_INTERVAL_SECONDS", "2")
    a, b, c = cluster.start("alder"), cluster.start("birch"), cluster.start("cedar")
    alder, birch, cedar = [await steward(node, http) for node in (a, b, c)]
    for title, fields in [
        ("Cedar public saw", {"visibility": "public"}),
        ("Cedar public need", {"visibility": "public", "kind": "need"}),
        ("Cedar partners van", {"visibility": "partners"}),
        ("Cedar community kettle", {}),
    ]:
        body = {"kind": "offer", "title": title, **fields}
        await cedar.ok("POST", "/api/v1/listings", expect=201, json=body)

    await birch.ok("POST", "/api/v1/discovery/peers", expect=201, json={"url": c.base_url})
    c_host = c.base_url.removeprefix("http://")
    assert c_host in await birch.ok("GET", "/api/v1/instance/peers")
    await alder.ok("POST", "/api/v1/discovery/peers", expect=201, json={"url": b.base_url})

    async def knows_cedar() -> dict[str, Any]:
        cards = await _directory(alder)
        assert f"cedar@{c_host}" in cards, cards
        return cards

    cards = await eventually(knows_cedar, within=30)
    card = cards[f"cedar@{c_host}"]
    assert (card["public_offer_count"], card["public_need_count"]) == (1, 1)
    assert card["partnership"] is None and card["is_local"] is False
    assert card["location"] == {"lat": 51.5, "lon": -0.12}
    # Known, not followed: nothing of Cedar's is mirrored on Alder.
    browse = await alder.all_items("/api/v1/discovery/browse")
    assert not [item for item in browse if item["community"]["handle"].startswith("cedar@")]

    # Cedar opts out; at their next refresh neither Alder nor Birch lists it.
    settings = await cedar.ok("PATCH", "/api/v1/community", json={"discoverable": False})
    assert settings["discoverable"] is False
    info = await cedar.ok("GET", "/nodeinfo/2.1")
    assert info["metadata"]["communities"] == []

    async def forgotten(client: ApiClient) -> None:
        assert f"cedar@{c_host}" not in await _directory(client)

    await eventually(lambda: forgotten(alder), within=30)
    await eventually(lambda: forgotten(birch), within=30)
    assert f"cedar@{c_host}" in await _directory(cedar)  # its own members still see it


async def test_leaving_and_rejoining_directories_reaches_followers_before_any_refresh(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    # Refresh rounds are hours apart (the default): only the actor Update can tell Birch.
    a, b = cluster.start("alder"), cluster.start("birch")
    alder, birch = await steward(a, http), await steward(b, http)
    await birch.ok("POST", "/api/v1/discovery/peers", expect=201, json={"url": a.base_url})
    handle = f"alder@{a.base_url.removeprefix('http://')}"
    assert handle in await _directory(birch)

    async def followed() -> None:
        async with http.get(
            f"{a.base_url}/c/alder/followers", headers={"Accept": "application/activity+json"}
        ) as resp:
            assert (await resp.json())["totalItems"] == 1

    await eventually(followed, within=30)

    async def listed(present: bool) -> None:
        assert (handle in await _directory(birch)) is present

    await alder.ok("PATCH", "/api/v1/community", json={"discoverable": False})
    await eventually(lambda: listed(False), within=30)
    await alder.ok("PATCH", "/api/v1/community", json={"discoverable": True})
    await eventually(lambda: listed(True), within=30)
