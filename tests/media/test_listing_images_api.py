"""Listing photos through the API: stored clean, refused cleanly, shown only to who may
see the listing. On SQLite and PostgreSQL."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from PIL import Image
from sqlalchemy import select

from node.media.store import media_root
from storage.engine import create_engine, create_session_factory
from storage.models import Delivery, ListingImage
from tests.conftest import NodeHandle
from tests.support.images import decompression_bomb, has_metadata, phone_photo, png_bytes

BASE = "http://tools.test"


async def create(node: NodeHandle, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"kind": "offer", "title": "Bike trailer", **fields}
    resp = await node.client.post("/api/v1/listings", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


def form(data: bytes, filename: str = "photo.jpg", description: str | None = None) -> Any:
    body = aiohttp.FormData()
    body.add_field("file", data, filename=filename, content_type="image/jpeg")
    if description is not None:
        body.add_field("description", description)
    return body


async def upload(
    node: NodeHandle, headers: dict[str, str], listing_id: str, data: bytes, **kwargs: Any
) -> aiohttp.ClientResponse:
    return await node.client.post(
        f"/api/v1/listings/{listing_id}/images", data=form(data, **kwargs), headers=headers
    )


def stored_files(node: NodeHandle) -> list[Path]:
    root = media_root(node.config)
    return sorted(root.iterdir()) if root.is_dir() else []


async def image_rows(node: NodeHandle) -> list[ListingImage]:
    engine = create_engine(node.config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            return list((await session.execute(select(ListingImage))).scalars())
    finally:
        await engine.dispose()


def path_of(url: str) -> str:
    assert url.startswith(BASE + "/media/"), url
    return url[len(BASE) :]


async def test_a_phone_photo_comes_back_upright_without_any_metadata(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers)
    original = phone_photo(1600, 1200, orientation=6)
    assert has_metadata(original)

    resp = await upload(node, headers, listing["id"], original, description="Red trailer")
    assert resp.status == 201, await resp.text()
    image = await resp.json()
    assert set(image) == {"id", "url", "thumbnail_url", "width", "height", "description"}
    assert image["description"] == "Red trailer"
    assert (image["width"], image["height"]) == (960, 1280)  # EXIF orientation applied

    for url in (image["url"], image["thumbnail_url"]):
        served = await node.client.get(path_of(url), headers=headers)
        assert served.status == 200
        assert served.content_type == "image/jpeg"
        assert "private" in served.headers["Cache-Control"]
        assert served.headers["X-Content-Type-Options"] == "nosniff"
        data = await served.read()
        assert not has_metadata(data)
    for path in stored_files(node):
        assert not has_metadata(path.read_bytes())
    with Image.open(io.BytesIO(data)) as thumb:
        assert max(thumb.size) == 320

    shown = await (
        await node.client.get(f"/api/v1/listings/{listing['id']}", headers=headers)
    ).json()
    assert shown["images"] == [image]


async def test_a_png_with_transparency_stays_png(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers)
    resp = await upload(node, headers, listing["id"], png_bytes(), filename="logo.png")
    assert resp.status == 201, await resp.text()
    served = await node.client.get(path_of((await resp.json())["url"]), headers=headers)
    assert served.content_type == "image/png"


async def test_oversized_and_non_image_uploads_are_refused_and_store_nothing(
    node: NodeHandle,
) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers)
    cases = [
        (b"\xff\xd8\xff" + b"\0" * (20 * 1024 * 1024), 413, "larger than 10 MB"),
        (b"%PDF-1.7 this is a document, not a photo", 415, "not a JPEG, PNG or WebP"),
        (phone_photo()[:2000], 422, "damaged"),
        (decompression_bomb(), 422, "too many pixels"),
    ]
    for data, status, words in cases:
        resp = await upload(node, headers, listing["id"], data)
        assert resp.status == status, await resp.text()
        body = await resp.json()
        assert words in body["error"]["message"]
    assert stored_files(node) == []
    assert await image_rows(node) == []
    shown = await (
        await node.client.get(f"/api/v1/listings/{listing['id']}", headers=headers)
    ).json()
    assert shown["images"] == []


async def test_uploads_need_the_file_field_and_an_editor(node: NodeHandle) -> None:
    headers = await node.login("ada")
    other = await node.login("bob")
    listing = await create(node, headers)
    resp = await node.client.post(
        f"/api/v1/listings/{listing['id']}/images", json={"file": "x"}, headers=headers
    )
    assert resp.status == 415
    empty = aiohttp.FormData(default_to_multipart=True)
    empty.add_field("description", "no photo")
    resp = await node.client.post(
        f"/api/v1/listings/{listing['id']}/images", data=empty, headers=headers
    )
    assert resp.status == 422
    assert (await upload(node, other, listing["id"], phone_photo())).status == 403
    assert (await upload(node, headers, "0" * 32, phone_photo())).status == 404
    assert stored_files(node) == []


async def test_a_fifth_photo_is_refused(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers)
    small = phone_photo(200, 150)
    for _ in range(4):
        assert (await upload(node, headers, listing["id"], small)).status == 201
    resp = await upload(node, headers, listing["id"], small)
    assert resp.status == 409
    assert "at most 4 photos" in (await resp.json())["error"]["message"]
    assert len(await image_rows(node)) == 4


async def test_removing_a_photo_or_the_listing_deletes_the_files(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers)
    first = await (await upload(node, headers, listing["id"], phone_photo(300, 200))).json()
    await upload(node, headers, listing["id"], phone_photo(300, 200))
    assert len(stored_files(node)) == 4  # two sizes each

    resp = await node.client.delete(
        f"/api/v1/listings/{listing['id']}/images/{first['id']}", headers=headers
    )
    assert resp.status == 204
    assert len(stored_files(node)) == 2
    assert (await node.client.get(path_of(first["url"]), headers=headers)).status == 404

    resp = await node.client.delete(f"/api/v1/listings/{listing['id']}", headers=headers)
    assert resp.status == 204
    assert stored_files(node) == []
    assert await image_rows(node) == []


async def test_a_community_listing_photo_is_for_its_members_only(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers, visibility="community")
    image = await (await upload(node, headers, listing["id"], phone_photo(300, 200))).json()
    path = path_of(image["url"])

    assert (await node.client.get(path)).status == 404  # nobody signed in
    await node.add_member("carol", community=None)
    assert (await node.client.get(path, headers=await node.login("dan"))).status == 200

    listing_object = await node.client.get(
        f"/c/tools/listings/{listing['id']}", headers={"Accept": "application/activity+json"}
    )
    assert listing_object.status == 404
    engine = create_engine(node.config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            bodies = [d.body for d in (await session.execute(select(Delivery))).scalars()]
    finally:
        await engine.dispose()
    assert not any(image["id"] in body or "/media/" in body for body in bodies)


async def test_a_public_listing_photo_is_served_to_anyone_and_federates(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers, visibility="public")
    image = await (
        await upload(node, headers, listing["id"], phone_photo(300, 200), description="Side view")
    ).json()
    assert (await node.client.get(path_of(image["url"]))).status == 200

    note = orjson.loads(
        await (
            await node.client.get(
                f"/c/tools/listings/{listing['id']}",
                headers={"Accept": "application/activity+json"},
            )
        ).read()
    )
    assert note["attachment"] == [
        {
            "type": "Image",
            "url": image["url"],
            "mediaType": "image/jpeg",
            "name": "Side view",
            "width": image["width"],
            "height": image["height"],
        }
    ]
