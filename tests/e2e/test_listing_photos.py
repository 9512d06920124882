"""Photos across real nodes: a partner's photo is fetched by the receiving node and served
from its own URL; deleting the photo or the listing there deletes our copy; a
community-only listing's photo never leaves its node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.e2e.conftest import Cluster, steward
from tests.e2e.test_partnerships import handle, propose_and_approve
from tests.support.api import ApiClient, eventually
from tests.support.images import has_metadata, phone_photo

pytestmark = pytest.mark.e2e


async def upload(client: ApiClient, listing_id: str, description: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", phone_photo(900, 600), filename="p.jpg", content_type="image/jpeg")
    form.add_field("description", description)
    image: dict[str, Any] = await client.ok(
        "POST", f"/api/v1/listings/{listing_id}/images", expect=201, data=form
    )
    return image


async def mirrored(client: ApiClient, title: str) -> dict[str, Any]:
    body = await client.ok("GET", "/api/v1/listings?include_partners=true&include_public=true")
    found = [item for item in body["items"] if item["title"] == title]
    assert found, f"{title!r} not mirrored yet"
    return dict(found[0])


def media_files(data: Path) -> list[Path]:
    folder = data / "media"
    return sorted(folder.iterdir()) if folder.is_dir() else []


async def test_a_partners_photo_is_served_by_our_own_node_and_deletions_follow(
    cluster: Cluster, http: aiohttp.ClientSession
) -> None:
    a, b = cluster.start("alder"), cluster.start("birch")
    alice, bob = await steward(a, http), await steward(b, http)
    await propose_and_approve(alice, bob, handle(b, "birch"))

    hidden = await alice.ok(
        "POST", "/api/v1/listings", expect=201, json={"kind": "offer", "title": "Our ladder"}
    )
    await upload(alice, hidden["id"], "Ladder in the shed")
    shared = await alice.ok(
        "POST",
        "/api/v1/listings",
        expect=201,
        json={"kind": "offer", "title": "Cargo bike", "visibility": "partners"},
    )
    original = await upload(alice, shared["id"], "Blue cargo bike")
    assert original["url"].startswith(a.base_url + "/media/")

    async def photo_fetched() -> dict[str, Any]:
        seen = await mirrored(bob, "Cargo bike")
        assert len(seen["images"]) == 1, seen
        return seen

    seen = await eventually(photo_fetched)
    ours = seen["images"][0]
    assert ours["url"].startswith(b.base_url + "/media/")
    assert ours["description"] == "Blue cargo bike"
    assert (ours["width"], ours["height"]) == (original["width"], original["height"])
    assert a.base_url not in ours["url"] + ours["thumbnail_url"]
    async with http.get(ours["url"], headers={"Authorization": f"Bearer {bob.token}"}) as resp:
        assert resp.status == 200
        assert resp.content_type == "image/jpeg"
        assert not has_metadata(await resp.read())
    async with http.get(ours["url"]) as resp:
        assert resp.status == 404  # our copy is for our members only
    assert "Our ladder" not in await bob.titles("include_partners=true&include_public=true")
    assert len(media_files(b.data)) == 2  # one photo, two sizes

    await alice.ok("DELETE", f"/api/v1/listings/{shared['id']}/images/{original['id']}", expect=204)

    async def photo_gone() -> None:
        assert (await mirrored(bob, "Cargo bike"))["images"] == []

    await eventually(photo_gone)
    assert media_files(b.data) == []
    async with http.get(ours["url"], headers={"Authorization": f"Bearer {bob.token}"}) as resp:
        assert resp.status == 404

    await upload(alice, shared["id"], "Cargo bike, again")
    await eventually(photo_fetched)
    await alice.ok("DELETE", f"/api/v1/listings/{shared['id']}", expect=204)

    async def listing_gone() -> None:
        assert "Cargo bike" not in await bob.titles("include_partners=true")

    await eventually(listing_gone)
    assert media_files(b.data) == []
