"""The listings API as API.md promises it, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import NodeHandle

LISTING_KEYS = {
    "id",
    "ap_id",
    "author",
    "kind",
    "title",
    "description",
    "category",
    "status",
    "visibility",
    "is_public",
    "location",
    "community",
    "origin",
    "created_at",
    "updated_at",
    "images",
}


async def create(node: NodeHandle, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    body = {"kind": "offer", "title": "Cordless drill", **fields}
    resp = await node.client.post("/api/v1/listings", json=body, headers=headers)
    assert resp.status == 201, await resp.text()
    return dict(await resp.json())


async def test_listing_without_visibility_stays_in_the_community(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers, description="18V, two batteries", category="Tools")
    assert set(listing) == LISTING_KEYS
    assert listing["visibility"] == "community"
    assert listing["is_public"] is False
    assert listing["origin"] == "local"
    assert listing["category"] == "tools"
    assert listing["community"] == {
        "id": "http://tools.test/c/tools",
        "handle": "tools@tools.test",
        "name": "Tool Library",
    }
    assert listing["ap_id"] == f"http://tools.test/c/tools/listings/{listing['id']}"
    assert listing["created_at"].endswith("Z") or "+" in listing["created_at"]


@pytest.mark.parametrize(
    ("fields", "visibility"),
    [
        ({"is_public": True}, "public"),
        ({"is_public": False}, "community"),
        ({"visibility": "public"}, "public"),
        ({"visibility": "partners"}, "partners"),
        ({"visibility": "public", "is_public": True}, "public"),
    ],
)
async def test_visibility_and_is_public_alias(
    node: NodeHandle, fields: dict[str, Any], visibility: str
) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers, **fields)
    assert listing["visibility"] == visibility
    assert listing["is_public"] is (visibility == "public")
    fetched = await node.client.get(f"/api/v1/listings/{listing['id']}", headers=headers)
    assert (await fetched.json())["visibility"] == visibility


async def test_contradictory_visibility_is_refused_and_nothing_is_stored(node: NodeHandle) -> None:
    headers = await node.login("ada")
    resp = await node.client.post(
        "/api/v1/listings",
        json={"kind": "need", "title": "Ladder", "visibility": "community", "is_public": True},
        headers=headers,
    )
    assert resp.status == 422
    assert (await resp.json())["error"]["code"] == "validation_error"
    listed = await node.client.get("/api/v1/listings", headers=headers)
    assert (await listed.json())["items"] == []


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "gift", "title": "x"},
        {"kind": "offer"},
        {"kind": "offer", "title": ""},
        {"kind": "offer", "title": "   "},
        {"kind": "offer", "title": "x" * 201},
        {"kind": "offer", "title": "x", "visibility": "everyone"},
        {"kind": "offer", "title": "x", "location": {"lat": 91, "lon": 0}},
        {"kind": "offer", "title": "x", "location": {"lat": "north", "lon": 0}},
        {"kind": "offer", "title": "x", "unexpected": 1},
        ["not", "an", "object"],
    ],
)
async def test_bad_listing_input_is_a_422_with_the_error_shape(node: NodeHandle, body: Any) -> None:
    headers = await node.login("ada")
    resp = await node.client.post("/api/v1/listings", json=body, headers=headers)
    assert resp.status == 422
    payload = await resp.json()
    assert payload["error"]["code"] == "validation_error"
    assert payload["error"]["message"]
    listed = await node.client.get("/api/v1/listings", headers=headers)
    assert (await listed.json())["items"] == []


async def test_malformed_json_and_wrong_content_type_are_4xx(node: NodeHandle) -> None:
    headers = await node.login("ada")
    resp = await node.client.post(
        "/api/v1/listings",
        data=b"{not json",
        headers={**headers, "Content-Type": "application/json"},
    )
    assert resp.status == 422
    resp = await node.client.post(
        "/api/v1/listings", data=b"kind=offer", headers={**headers, "Content-Type": "text/plain"}
    )
    assert resp.status == 415
    assert (await resp.json())["error"]["code"] == "unsupported_media_type"


async def test_oversized_body_is_413(node: NodeHandle) -> None:
    headers = await node.login("ada")
    big = {"kind": "offer", "title": "x", "description": "y" * (2 * 1024 * 1024)}
    resp = await node.client.post("/api/v1/listings", json=big, headers=headers)
    assert resp.status == 413
    assert (await resp.json())["error"]["code"] == "payload_too_large"


async def test_list_filters_by_kind_category_and_status(node: NodeHandle) -> None:
    headers = await node.login("ada")
    drill = await create(node, headers, title="Drill", category="tools")
    await create(node, headers, kind="need", title="Babysitting", category="care")
    await create(node, headers, title="Soup", category="food")
    await node.client.patch(
        f"/api/v1/listings/{drill['id']}", json={"status": "closed"}, headers=headers
    )

    async def titles(query: str) -> list[str]:
        resp = await node.client.get(f"/api/v1/listings?{query}", headers=headers)
        assert resp.status == 200
        return sorted(item["title"] for item in (await resp.json())["items"])

    assert await titles("") == ["Babysitting", "Drill", "Soup"]
    assert await titles("kind=need") == ["Babysitting"]
    assert await titles("category=tools") == ["Drill"]
    assert await titles("status=active") == ["Babysitting", "Soup"]
    assert await titles("include_public=true&include_partners=true") == [
        "Babysitting",
        "Drill",
        "Soup",
    ]
    bad = await node.client.get("/api/v1/listings?kind=gift", headers=headers)
    assert bad.status == 422


async def test_author_edits_any_field_including_visibility(node: NodeHandle) -> None:
    headers = await node.login("ada")
    listing = await create(node, headers)
    resp = await node.client.patch(
        f"/api/v1/listings/{listing['id']}",
        json={"title": "Hammer drill", "is_public": True, "location": {"lat": 51.5, "lon": -0.1}},
        headers=headers,
    )
    assert resp.status == 200
    edited = await resp.json()
    assert edited["title"] == "Hammer drill"
    assert (edited["visibility"], edited["is_public"]) == ("public", True)
    assert edited["location"] == {"lat": 51.5, "lon": -0.1, "precision": "exact"}
    assert edited["updated_at"] >= listing["updated_at"]
    resp = await node.client.patch(
        f"/api/v1/listings/{listing['id']}", json={"is_public": False}, headers=headers
    )
    assert (await resp.json())["visibility"] == "community"
    resp = await node.client.patch(
        f"/api/v1/listings/{listing['id']}", json={"visibility": "partners"}, headers=headers
    )
    assert (await resp.json())["is_public"] is False


async def test_only_author_or_steward_may_edit_or_delete(node: NodeHandle) -> None:
    author = await node.login("ada")
    other = await node.login("bob")
    steward = await node.login("sam", role="steward")
    listing = await create(node, author)
    url = f"/api/v1/listings/{listing['id']}"

    resp = await node.client.patch(url, json={"title": "Mine now"}, headers=other)
    assert resp.status == 403
    assert (await resp.json())["error"]["code"] == "forbidden"
    resp = await node.client.delete(url, headers=other)
    assert resp.status == 403
    unchanged = await (await node.client.get(url, headers=author)).json()
    assert unchanged["title"] == "Cordless drill"

    resp = await node.client.patch(url, json={"status": "closed"}, headers=steward)
    assert resp.status == 200
    resp = await node.client.delete(url, headers=steward)
    assert resp.status == 204
    resp = await node.client.get(url, headers=author)
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"


async def test_every_listing_call_needs_a_token(node: NodeHandle) -> None:
    calls = [
        ("GET", "/api/v1/listings"),
        ("POST", "/api/v1/listings"),
        ("GET", "/api/v1/listings/abc"),
        ("PATCH", "/api/v1/listings/abc"),
        ("DELETE", "/api/v1/listings/abc"),
    ]
    for method, url in calls:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
            resp = await node.client.request(method, url, headers=headers)
            assert resp.status == 401, (method, url, headers)
            assert (await resp.json())["error"]["code"] == "unauthorized"


async def test_wrong_credentials_are_401(node: NodeHandle) -> None:
    await node.add_member("ada")
    for body in (
        {"username": "ada", "password": "wrong"},
        {"username": "nobody", "password": "wrong"},
    ):
        resp = await node.client.post("/api/v1/auth/token", json=body)
        assert resp.status == 401
        assert (await resp.json())["error"]["code"] == "unauthorized"
    resp = await node.client.post("/api/v1/auth/token", json={"username": "ada"})
    assert resp.status == 422


async def test_unknown_api_path_is_json_404(node: NodeHandle) -> None:
    resp = await node.client.get("/api/v1/nothing-here")
    assert resp.status == 404
    assert (await resp.json())["error"]["code"] == "not_found"
    resp = await node.client.put("/api/v1/listings")
    assert resp.status == 405
    assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_a_place_is_kept_only_as_precisely_as_asked(node: NodeHandle) -> None:
    headers = await node.login("ada")
    point = {"lat": 51.507215, "lon": -0.127586}
    resp = await node.client.post(
        "/api/v1/listings",
        json={"kind": "offer", "title": "Canoe", "location": {**point, "precision": "area"}},
        headers=headers,
    )
    assert resp.status == 201
    created = await resp.json()
    assert created["location"] == {"lat": 51.5, "lon": -0.1, "precision": "area"}
    resp = await node.client.patch(
        f"/api/v1/listings/{created['id']}",
        json={"location": {**point, "precision": "neighbourhood"}},
        headers=headers,
    )
    assert (await resp.json())["location"] == {
        "lat": 51.51,
        "lon": -0.13,
        "precision": "neighbourhood",
    }
    resp = await node.client.patch(
        f"/api/v1/listings/{created['id']}",
        json={"location": {**point, "precision": "street"}},
        headers=headers,
    )
    assert resp.status == 422
    got = await node.client.get(f"/api/v1/listings/{created['id']}", headers=headers)
    assert (await got.json())["location"]["precision"] == "neighbourhood"
