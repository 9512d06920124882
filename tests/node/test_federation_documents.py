"""What other servers read from a node: actor, WebFinger, NodeInfo, /ns, outbox, objects."""

from __future__ import annotations

from typing import Any

from tests.conftest import NodeHandle

AP = "application/activity+json"


async def _post(node: NodeHandle, headers: dict[str, str], **fields: Any) -> dict[str, Any]:
    resp = await node.client.post(
        "/api/v1/listings", json={"kind": "offer", **fields}, headers=headers
    )
    assert resp.status == 201
    return dict(await resp.json())


async def test_actor_is_json_by_default_and_a_page_for_browsers(node: NodeHandle) -> None:
    resp = await node.client.get("/c/tools")
    assert resp.status == 200
    assert resp.content_type == AP
    actor = await resp.json(content_type=None)
    assert actor["type"] == "Group"
    assert actor["id"] == "http://tools.test/c/tools"
    assert actor["publicKey"]["id"] == "http://tools.test/c/tools#main-key"
    assert actor["publicKey"]["owner"] == actor["id"]
    assert "BEGIN PUBLIC KEY" in actor["publicKey"]["publicKeyPem"]
    assert actor["endpoints"]["sharedInbox"] == "http://tools.test/inbox"
    assert actor["location"] == {"type": "Place", "latitude": 51.51, "longitude": -0.13}

    browser = await node.client.get(
        "/c/tools", headers={"Accept": "text/html,application/xhtml+xml"}, allow_redirects=False
    )
    assert browser.status == 302
    assert browser.headers["Location"] == "/communities/tools"
    page = await node.client.get("/communities/tools")
    assert page.status == 200
    assert "Tool Library" in await page.text()
    assert (await node.client.get("/c/nobody")).status == 404


async def test_webfinger_nodeinfo_and_context(node: NodeHandle) -> None:
    resp = await node.client.get("/.well-known/webfinger?resource=acct:tools@tools.test")
    assert resp.status == 200
    jrd = await resp.json(content_type=None)
    assert {"rel": "self", "type": AP, "href": "http://tools.test/c/tools"} in jrd["links"]
    for bad in ("acct:nobody@tools.test", "acct:tools@elsewhere.test"):
        assert (await node.client.get(f"/.well-known/webfinger?resource={bad}")).status == 404
    assert (await node.client.get("/.well-known/webfinger?resource=nonsense")).status == 400

    links = await (await node.client.get("/.well-known/nodeinfo")).json()
    assert links["links"][0]["href"] == "http://tools.test/nodeinfo/2.1"
    info = await (await node.client.get("/nodeinfo/2.1")).json()
    assert info["software"]["name"] == "commons-node"
    assert info["protocols"] == ["activitypub"]
    assert info["metadata"]["communities"][0]["handle"] == "tools@tools.test"

    context = await (await node.client.get("/ns")).json(content_type=None)
    assert "kind" in context["@context"]


async def test_outbox_pages_hold_public_listings_only(node: NodeHandle) -> None:
    headers = await node.login("ada")
    public = [await _post(node, headers, title=f"Public {n}", is_public=True) for n in range(23)]
    await _post(node, headers, title="Members only")
    partners = await _post(node, headers, title="Partners only", visibility="partners")

    collection = await (await node.client.get("/c/tools/outbox")).json(content_type=None)
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 23
    seen: list[str] = []
    url: str | None = collection["first"]
    while url:
        page = await (await node.client.get(url.replace("http://tools.test", ""))).json(
            content_type=None
        )
        for item in page["orderedItems"]:
            assert item["type"] == "Create"
            seen.append(item["object"]["name"])
        url = page.get("next")
    assert sorted(seen) == sorted(p["title"] for p in public)
    assert seen[0] == "Public 22"

    for listing, status in ((public[0], 200), (partners, 404)):
        resp = await node.client.get(
            listing["ap_id"].replace("http://tools.test", ""), headers={"Accept": AP}
        )
        assert resp.status == status
    for unsigned in ("", "?page=true", "?page=true&after=bm90LWEtcG9zaXRpb24", "?after=x"):
        resp = await node.client.get(f"/c/tools/partner-listings{unsigned}")
        assert resp.status == 404  # not even a 400 for a bad position: nothing to see here
        assert "Partners only" not in await resp.text()
    assert (await node.client.get("/c/tools/outbox?page=zero")).status == 400
